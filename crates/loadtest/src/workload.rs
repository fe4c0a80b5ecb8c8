//! What to send next: the request mix, the wallet choice and the amounts. Pure and cheap, because
//! it runs once per request on the same cores as the server under test.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use clap::ValueEnum;
use rand::RngExt;
use uuid::Uuid;

/// Largest amount (and balance) the API accepts: 2^53-1, exact in every JSON client.
pub const MAX_AMOUNT: u64 = (1 << 53) - 1;

/// The wallet the hot transfer patterns centre on: the merchant or the payer. Wallet 0 is also
/// the hottest under zipf and always in the history sample, so the hot wallet is always checked.
pub const HOT_WALLET: u32 = 0;

/// What the payer of `--transfers hot-payer` starts with, at least: every transfer draws on it,
/// so `--initial-balance` would run out within seconds. 10^12 lasts a 15 s run at 20,000
/// transfers/s of up to 100 (3 * 10^7 at most) thirty thousand times over, so the run measures
/// transfers rather than `409 INSUFFICIENT_FUNDS`.
pub const HOT_PAYER_BALANCE: u64 = 1_000_000_000_000;
// The claim above, checked when compiling; and the payer is funded with one valid deposit.
const _: () = assert!(HOT_PAYER_BALANCE >= 15 * 20_000 * 100 && HOT_PAYER_BALANCE <= MAX_AMOUNT);

/// One payment in this many voids its hold instead of confirming it, so that released holds
/// are exercised too.
pub const VOID_EVERY: u64 = 20;
/// One payment in this many (none of the voided ones) confirms only part of its hold, which
/// releases the rest.
pub const PARTIAL_EVERY: u64 = 10;
// Payment `n` is voided when `n % VOID_EVERY == 0` and confirmed in part when
// `n % PARTIAL_EVERY == PARTIAL_EVERY / 2`: the two never meet, so the shares are exact.
const _: () = assert!(VOID_EVERY.is_multiple_of(PARTIAL_EVERY) && PARTIAL_EVERY >= 2);

/// How a payment's hold ends. The workload confirms or voids every hold it places (the first
/// three); the last two are what the server may report for a hold whose second request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Confirmed without a body: the whole held amount is withdrawn.
    Confirm,
    /// Confirmed with `{"amount"}` below the held amount: that much is withdrawn, the rest
    /// released.
    ConfirmPart(u64),
    /// Voided: the whole hold is released, nothing withdrawn.
    Void,
    /// Reached its `expiresAt` unresolved: released like a void.
    Expired,
    /// Still reserved, counted in its wallet's `held`.
    Pending,
}

impl Settle {
    /// What a hold of `held` ending this way takes out of its wallet's balance.
    pub fn withdrawn(self, held: u64) -> u64 {
        match self {
            Settle::Confirm => held,
            Settle::ConfirmPart(amount) => amount,
            Settle::Void | Settle::Expired | Settle::Pending => 0,
        }
    }

    /// How the workload ends payment number `n` (counted from 0 across the run) of `held`:
    /// every [`VOID_EVERY`]-th is voided, every [`PARTIAL_EVERY`]-th of the others confirmed
    /// in part (a random share, whenever `held` can be split), the rest confirmed in full.
    fn planned(n: u64, held: u64, rng: &mut impl rand::Rng) -> Self {
        if n.is_multiple_of(VOID_EVERY) {
            Settle::Void
        } else if n % PARTIAL_EVERY == PARTIAL_EVERY / 2 && held >= 2 {
            Settle::ConfirmPart(rng.random_range(1..held))
        } else {
            Settle::Confirm
        }
    }
}

/// The money movements, with the wallets each one touches. Wallets index the run's wallet
/// list, which keeps a [`Write`] `Copy` and small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Deposit {
        wallet: u32,
    },
    Withdraw {
        wallet: u32,
    },
    /// Money moved from one wallet to another in one commit.
    Transfer {
        from: u32,
        to: u32,
    },
    /// A payment, authorised then captured: a hold on the wallet (a pending withdrawal), then
    /// its confirmation or void, two requests counted as one.
    Capture {
        wallet: u32,
        settle: Settle,
    },
}

impl WriteKind {
    /// Whether the write takes money out of a wallet, and so may be refused with
    /// `409 INSUFFICIENT_FUNDS` without anything being wrong (a payment at its hold).
    pub fn debits(self) -> bool {
        matches!(
            self,
            WriteKind::Withdraw { .. } | WriteKind::Transfer { .. } | WriteKind::Capture { .. }
        )
    }
}

/// One deposit, withdrawal, transfer or payment, with the client-chosen id (`operationId` or
/// `transferId`; a payment's `operationId` names its hold as well) that makes it traceable and
/// idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write {
    pub kind: WriteKind,
    /// The amount moved; for a payment, the amount held.
    pub amount: u64,
    pub id: Uuid,
}

/// One request of the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Write(Write),
    Read {
        wallet: u32,
    },
    /// `GET /health/live`: the service's cost of HTTP alone, with no database work. Driven at
    /// full speed, it measures the ceiling that the wallet endpoints are compared with.
    Live,
    /// `POST /api/v1/batches` of deposits, withdrawals and transfers (`--batch-size`), each
    /// decided on its own as if it had been sent alone.
    Batch(Vec<Write>),
}

impl Op {
    /// The writes the request sends: none for a read or a liveness check, one for a write,
    /// a batch's items in order.
    pub fn writes(&self) -> &[Write] {
        match self {
            Op::Write(write) => std::slice::from_ref(write),
            Op::Batch(writes) => writes,
            Op::Read { .. } | Op::Live => &[],
        }
    }
}

/// Relative weights of deposits, withdrawals, transfers, payments (`capture`), balance reads
/// and liveness checks, e.g. `deposit=45,withdraw=45,read=10`. Missing kinds weigh zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    deposit: u32,
    withdraw: u32,
    transfer: u32,
    capture: u32,
    read: u32,
    live: u32,
}

/// Which kind of request a mix roll chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Deposit,
    Withdraw,
    Transfer,
    Capture,
    Read,
    Live,
}

impl Mix {
    fn total(&self) -> u32 {
        self.deposit + self.withdraw + self.transfer + self.capture + self.read + self.live
    }

    /// Whether any request of the mix names a wallet. A mix of liveness checks alone needs no
    /// wallets: nothing to set up and nothing to verify.
    pub fn touches_wallets(&self) -> bool {
        self.total() > self.live
    }

    /// Whether the mix sends transfers, which need two wallets and a pattern.
    pub fn has_transfers(&self) -> bool {
        self.transfer > 0
    }

    /// Whether every request of the mix can be an item of a batch: deposits, withdrawals and
    /// transfers can; a payment is two requests, the second sent once the first is answered,
    /// and reads and liveness checks are no items of a batch.
    pub fn batchable(&self) -> bool {
        self.capture == 0 && self.read == 0 && self.live == 0
    }

    /// Maps a roll in `0..total` onto a kind, in proportion to the weights.
    fn pick(&self, roll: u32) -> Kind {
        let kinds = [
            (self.deposit, Kind::Deposit),
            (self.withdraw, Kind::Withdraw),
            (self.transfer, Kind::Transfer),
            (self.capture, Kind::Capture),
            (self.read, Kind::Read),
        ];
        let mut bound = 0;
        for (weight, kind) in kinds {
            bound += weight;
            if roll < bound {
                return kind;
            }
        }
        Kind::Live
    }
}

impl FromStr for Mix {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        let mut weights = [None; 6];
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .with_context(|| format!("`{part}` is not of the form kind=weight"))?;
            let slot = match name.trim().to_ascii_lowercase().as_str() {
                "deposit" => 0,
                "withdraw" => 1,
                "transfer" => 2,
                "capture" => 3,
                "read" => 4,
                "live" => 5,
                other => bail!(
                    "unknown request kind `{other}` (use deposit, withdraw, transfer, capture, \
                     read, live)"
                ),
            };
            let weight: u32 = weight
                .trim()
                .parse()
                .with_context(|| format!("weight of `{name}` must be a whole number"))?;
            ensure!(weight <= 1_000_000, "weight of `{name}` is too large");
            ensure!(
                weights[slot].replace(weight).is_none(),
                "`{name}` is given twice"
            );
        }
        let [deposit, withdraw, transfer, capture, read, live] = weights.map(|w| w.unwrap_or(0));
        let mix = Mix {
            deposit,
            withdraw,
            transfer,
            capture,
            read,
            live,
        };
        ensure!(
            mix.total() > 0,
            "the mix needs at least one positive weight"
        );
        Ok(mix)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deposit={},withdraw={}", self.deposit, self.withdraw)?;
        // Transfers, payments and liveness checks are shown only when used, so the usual mixes
        // read as they always have.
        if self.transfer > 0 {
            write!(f, ",transfer={}", self.transfer)?;
        }
        if self.capture > 0 {
            write!(f, ",capture={}", self.capture)?;
        }
        write!(f, ",read={}", self.read)?;
        if self.live > 0 {
            write!(f, ",live={}", self.live)?;
        }
        Ok(())
    }
}

/// Zipf distribution over ranks `0..n`: rank `k` has weight `1 / (k+1)^s`. Sampled by binary
/// search in a precomputed cumulative table, exact for any `s >= 0` and O(log n) per draw.
#[derive(Debug, Clone)]
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    /// Builds the table for `n >= 1` ranks.
    pub fn new(n: u32, s: f64) -> Self {
        let mut sum = 0.0;
        let cumulative = (1..=n)
            .map(|rank| {
                sum += f64::from(rank).powf(-s);
                sum
            })
            .collect();
        Zipf { cumulative }
    }

    /// Maps a uniform draw `u` in `[0, 1)` onto a rank.
    pub fn rank(&self, u: f64) -> u32 {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let index = self.cumulative.partition_point(|&c| c <= u * total);
        // `u * total` can round up to `total` itself; clamp into range.
        index.min(self.cumulative.len() - 1) as u32
    }

    /// Maps a uniform draw `u` in `[0, 1)` onto a rank other than `excluded`, each with its
    /// zipf weight: the distribution given that the rank is not `excluded`. The draw lands on
    /// the table with `excluded`'s interval cut out, so it takes one draw however heavy that
    /// rank is, where redrawing could take thousands under a steep exponent. Needs two ranks.
    pub fn rank_excluding(&self, u: f64, excluded: u32) -> u32 {
        let last = self.cumulative.len() - 1;
        let excluded = excluded as usize;
        let start = excluded
            .checked_sub(1)
            .map_or(0.0, |below| self.cumulative[below]);
        let end = self.cumulative[excluded];
        let total = self.cumulative[last];
        let x = u * (total - (end - start));
        let index = if x < start {
            // Below the cut: every rank's interval is where it was.
            self.cumulative.partition_point(|&c| c <= x)
        } else {
            // Above the cut: skip `excluded`'s interval. Adding to `end`, rather than adding
            // the interval's width to `x`, keeps rounding from landing back inside it.
            self.cumulative.partition_point(|&c| c <= end + (x - start))
        };
        // Rounding can reach past the last rank, which may itself be the excluded one.
        let index = index.min(last);
        (if index == excluded { index - 1 } else { index }) as u32
    }
}

/// How a request chooses its wallet.
#[derive(Debug, Clone)]
pub enum WalletChoice {
    Uniform { wallets: u32 },
    Zipf(Zipf),
}

impl WalletChoice {
    /// Draws a wallet.
    fn pick(&self, rng: &mut impl rand::Rng) -> u32 {
        match self {
            WalletChoice::Uniform { wallets } => rng.random_range(0..*wallets),
            WalletChoice::Zipf(zipf) => zipf.rank(rng.random()),
        }
    }

    /// Draws a wallet other than `excluded`, in the same proportions as [`Self::pick`] among
    /// the others. Needs two wallets.
    fn pick_other(&self, excluded: u32, rng: &mut impl rand::Rng) -> u32 {
        match self {
            WalletChoice::Uniform { wallets } => {
                let other = rng.random_range(0..*wallets - 1);
                other + u32::from(other >= excluded)
            }
            WalletChoice::Zipf(zipf) => zipf.rank_excluding(rng.random(), excluded),
        }
    }
}

/// Which wallets transfers move money between (`--transfers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransferPattern {
    /// A payer and a payee drawn as `--distribution` says, never the same wallet.
    Random,
    /// Every other wallet (drawn as `--distribution` says) pays wallet 0, the merchant: one
    /// hot destination.
    HotMerchant,
    /// Wallet 0 pays every other wallet (drawn as `--distribution` says): one hot source,
    /// funded with at least 10^12 so that it cannot run dry.
    HotPayer,
}

impl TransferPattern {
    /// Draws the `(from, to)` wallets of the next transfer; they always differ, as the API
    /// requires (`400 SAME_WALLET` otherwise).
    fn pair(self, wallets: &WalletChoice, rng: &mut impl rand::Rng) -> (u32, u32) {
        match self {
            TransferPattern::Random => {
                let from = wallets.pick(rng);
                (from, wallets.pick_other(from, rng))
            }
            TransferPattern::HotMerchant => (wallets.pick_other(HOT_WALLET, rng), HOT_WALLET),
            TransferPattern::HotPayer => (HOT_WALLET, wallets.pick_other(HOT_WALLET, rng)),
        }
    }

    /// The deposit that funds `wallet` before the run: `initial_balance`, or for the payer of
    /// hot-payer at least [`HOT_PAYER_BALANCE`].
    pub fn funding(self, wallet: u32, initial_balance: u64) -> u64 {
        if self == TransferPattern::HotPayer && wallet == HOT_WALLET {
            initial_balance.max(HOT_PAYER_BALANCE)
        } else {
            initial_balance
        }
    }
}

/// The request generator: a mix, a wallet choice, a transfer pattern, an amount range and the
/// number of writes per request.
#[derive(Debug)]
pub struct Workload {
    mix: Mix,
    wallets: WalletChoice,
    transfers: TransferPattern,
    amounts: RangeInclusive<u64>,
    /// Writes per request: 1 sends each on its own, more sends them as one batch.
    batch_size: usize,
    /// Payments drawn so far by every runner: their number decides how each ends, so the
    /// shares of partial confirmations and voids are exact rather than likely.
    payments: AtomicU64,
}

impl Workload {
    pub fn new(
        mix: Mix,
        wallets: WalletChoice,
        transfers: TransferPattern,
        amounts: RangeInclusive<u64>,
        batch_size: usize,
    ) -> Self {
        Workload {
            mix,
            wallets,
            transfers,
            amounts,
            batch_size,
            payments: AtomicU64::new(0),
        }
    }

    /// Draws the next request: one drawn by [`Self::next`], or with a batch size above 1 a
    /// batch of that many, each drawn the same way. The command line lets only a mix of
    /// deposits, withdrawals and transfers ([`Mix::batchable`]) be batched.
    pub fn request(&self, rng: &mut impl rand::Rng) -> Op {
        if self.batch_size == 1 {
            return self.next(rng);
        }
        let items = (0..self.batch_size).map(|_| match self.next(rng) {
            Op::Write(write) => write,
            other => unreachable!("a batchable mix drew {other:?}"),
        });
        Op::Batch(items.collect())
    }

    /// Draws the next operation; write ids come from `rng` too, so no system call per request.
    fn next(&self, rng: &mut impl rand::Rng) -> Op {
        // Drawn first because how a payment ends depends on its amount.
        let amount = rng.random_range(self.amounts.clone());
        let kind = match self.mix.pick(rng.random_range(0..self.mix.total())) {
            Kind::Live => return Op::Live,
            Kind::Read => {
                return Op::Read {
                    wallet: self.wallets.pick(rng),
                };
            }
            Kind::Deposit => WriteKind::Deposit {
                wallet: self.wallets.pick(rng),
            },
            Kind::Withdraw => WriteKind::Withdraw {
                wallet: self.wallets.pick(rng),
            },
            Kind::Transfer => {
                let (from, to) = self.transfers.pair(&self.wallets, rng);
                WriteKind::Transfer { from, to }
            }
            Kind::Capture => {
                let n = self.payments.fetch_add(1, Ordering::Relaxed);
                WriteKind::Capture {
                    wallet: self.wallets.pick(rng),
                    settle: Settle::planned(n, amount, rng),
                }
            }
        };
        Op::Write(Write {
            kind,
            amount,
            id: new_id(rng),
        })
    }
}

/// A time-ordered id (UUID version 7, as the API advises clients to make them): the current
/// millisecond, then bits from a fast user-space generator. Ids only have to be unique, not
/// secret, and `rng` is seeded from the operating system once per runner.
pub fn new_id(rng: &mut impl rand::Rng) -> Uuid {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    uuid::Builder::from_unix_timestamp_millis(millis, &rng.random()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn rng() -> SmallRng {
        SmallRng::seed_from_u64(7)
    }

    /// `op` without the time in its ids (their first 48 bits, the millisecond each was made),
    /// which two draws from the same seed need not share.
    fn timeless(op: Op) -> Op {
        let clear = |write: Write| {
            let mut bytes = *write.id.as_bytes();
            bytes[..6].fill(0);
            Write {
                id: Uuid::from_bytes(bytes),
                ..write
            }
        };
        match op {
            Op::Write(write) => Op::Write(clear(write)),
            Op::Batch(writes) => Op::Batch(writes.into_iter().map(clear).collect()),
            other => other,
        }
    }

    #[test]
    fn mix_parses_percentages() {
        let mix: Mix = "deposit=45,withdraw=45,read=10".parse().unwrap();
        assert_eq!(
            mix,
            Mix {
                deposit: 45,
                withdraw: 45,
                transfer: 0,
                capture: 0,
                read: 10,
                live: 0
            }
        );
    }

    #[test]
    fn mix_missing_kinds_weigh_zero_and_spaces_are_ignored() {
        let mix: Mix = " Deposit = 3 , read=1 ".parse().unwrap();
        assert_eq!(
            mix,
            Mix {
                deposit: 3,
                withdraw: 0,
                transfer: 0,
                capture: 0,
                read: 1,
                live: 0
            }
        );
    }

    #[test]
    fn mix_rejects_unknown_duplicate_malformed_and_all_zero() {
        assert!("hold=1".parse::<Mix>().is_err());
        assert!("deposit=1,deposit=2".parse::<Mix>().is_err());
        assert!("deposit".parse::<Mix>().is_err());
        assert!("deposit=-1".parse::<Mix>().is_err());
        assert!("deposit=0,read=0".parse::<Mix>().is_err());
        assert!("".parse::<Mix>().is_err());
    }

    #[test]
    fn mix_display_round_trips() {
        let mix: Mix = "read=1,withdraw=2".parse().unwrap();
        assert_eq!(mix.to_string().parse::<Mix>().unwrap(), mix);
        let with_live: Mix = "live=3,deposit=1".parse().unwrap();
        assert_eq!(with_live.to_string().parse::<Mix>().unwrap(), with_live);
        let with_transfers: Mix = "transfer=5,read=1,live=1".parse().unwrap();
        assert_eq!(
            with_transfers.to_string().parse::<Mix>().unwrap(),
            with_transfers
        );
        let with_captures: Mix = "capture=9,transfer=1,deposit=1".parse().unwrap();
        assert_eq!(
            with_captures.to_string().parse::<Mix>().unwrap(),
            with_captures
        );
    }

    #[test]
    fn mix_shows_transfers_and_live_only_when_used() {
        let mix: Mix = "deposit=1".parse().unwrap();
        assert_eq!(mix.to_string(), "deposit=1,withdraw=0,read=0");
        let mix: Mix = "live=100".parse().unwrap();
        assert_eq!(mix.to_string(), "deposit=0,withdraw=0,read=0,live=100");
        let mix: Mix = "transfer=100".parse().unwrap();
        assert_eq!(mix.to_string(), "deposit=0,withdraw=0,transfer=100,read=0");
        let mix: Mix = "capture=100".parse().unwrap();
        assert_eq!(mix.to_string(), "deposit=0,withdraw=0,capture=100,read=0");
    }

    #[test]
    fn capture_is_a_mix_kind_of_its_own() {
        let mix: Mix = "Capture=3,read=1".parse().unwrap();
        assert_eq!(
            mix,
            Mix {
                deposit: 0,
                withdraw: 0,
                transfer: 0,
                capture: 3,
                read: 1,
                live: 0
            }
        );
        assert!("capture=1,capture=1".parse::<Mix>().is_err());
        assert!("captures=1".parse::<Mix>().is_err());
    }

    #[test]
    fn only_a_mix_of_liveness_checks_leaves_wallets_alone() {
        assert!(!"live=100".parse::<Mix>().unwrap().touches_wallets());
        assert!("live=99,read=1".parse::<Mix>().unwrap().touches_wallets());
        assert!("withdraw=1".parse::<Mix>().unwrap().touches_wallets());
        assert!("transfer=1".parse::<Mix>().unwrap().touches_wallets());
        assert!("capture=1,live=5".parse::<Mix>().unwrap().touches_wallets());
    }

    #[test]
    fn only_deposits_withdrawals_and_transfers_can_be_batched() {
        for mix in [
            "deposit=1",
            "withdraw=3,transfer=1",
            "deposit=50,withdraw=50",
        ] {
            assert!(mix.parse::<Mix>().unwrap().batchable(), "{mix}");
        }
        for mix in [
            "capture=1",
            "deposit=1,read=1",
            "live=1",
            "transfer=9,capture=1",
        ] {
            assert!(!mix.parse::<Mix>().unwrap().batchable(), "{mix}");
        }
    }

    /// A workload of deposits, withdrawals and transfers among 10 wallets, `batch_size` writes
    /// per request.
    fn moves(batch_size: usize) -> Workload {
        Workload::new(
            "deposit=2,withdraw=2,transfer=1".parse().unwrap(),
            WalletChoice::Uniform { wallets: 10 },
            TransferPattern::Random,
            1..=100,
            batch_size,
        )
    }

    #[test]
    fn one_write_per_request_is_drawn_as_it_always_was() {
        let (mut drawn, mut expected) = (rng(), rng());
        for _ in 0..100 {
            let request = moves(1).request(&mut drawn);
            assert!(matches!(request, Op::Write(_)), "{request:?}");
            assert_eq!(timeless(request), timeless(moves(1).next(&mut expected)));
        }
    }

    #[test]
    fn a_batch_holds_writes_drawn_one_by_one_from_the_mix() {
        let (mut drawn, mut expected) = (rng(), rng());
        let batched = moves(100);
        let single = moves(1);
        for _ in 0..10 {
            let Op::Batch(items) = batched.request(&mut drawn) else {
                panic!("a batch size of 100 drew a single request");
            };
            assert_eq!(items.len(), 100);
            for item in &items {
                assert_eq!(
                    timeless(Op::Write(*item)),
                    timeless(single.next(&mut expected))
                );
            }
            let ids: std::collections::HashSet<_> = items.iter().map(|w| w.id).collect();
            assert_eq!(ids.len(), 100, "every item has its own id");
        }
    }

    #[test]
    fn live_mix_draws_only_liveness_checks() {
        let mix: Mix = "live=1".parse().unwrap();
        let workload = Workload::new(
            mix,
            WalletChoice::Uniform { wallets: 1 },
            TransferPattern::Random,
            1..=1,
            1,
        );
        let mut rng = rng();
        assert!((0..100).all(|_| workload.next(&mut rng) == Op::Live));
    }

    #[test]
    fn mix_pick_follows_the_weights_exactly() {
        let mix: Mix = "deposit=2,withdraw=1,transfer=2,capture=1,read=1,live=1"
            .parse()
            .unwrap();
        let kinds: Vec<Kind> = (0..mix.total()).map(|roll| mix.pick(roll)).collect();
        assert_eq!(
            kinds,
            [
                Kind::Deposit,
                Kind::Deposit,
                Kind::Withdraw,
                Kind::Transfer,
                Kind::Transfer,
                Kind::Capture,
                Kind::Read,
                Kind::Live
            ]
        );
    }

    #[test]
    fn zipf_ranks_stay_in_range_even_at_the_edges() {
        let zipf = Zipf::new(10, 1.0);
        assert_eq!(zipf.rank(0.0), 0);
        assert_eq!(zipf.rank(0.999_999_999_999), 9);
        assert_eq!(zipf.rank(1.0), 9);
        let mut rng = rng();
        assert!((0..10_000).all(|_| zipf.rank(rng.random()) < 10));
    }

    #[test]
    fn zipf_with_one_wallet_always_picks_it() {
        let zipf = Zipf::new(1, 1.2);
        assert_eq!(zipf.rank(0.0), 0);
        assert_eq!(zipf.rank(0.5), 0);
    }

    #[test]
    fn zipf_favours_low_ranks_in_the_expected_proportion() {
        // With s = 1 and n = 4 the weights are 1, 1/2, 1/3, 1/4 (sum 25/12): rank 0 gets 48%.
        let zipf = Zipf::new(4, 1.0);
        let mut rng = rng();
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            counts[zipf.rank(rng.random()) as usize] += 1;
        }
        assert!(counts.windows(2).all(|w| w[0] > w[1]), "{counts:?}");
        let share = f64::from(counts[0]) / 100_000.0;
        assert!((share - 0.48).abs() < 0.01, "{share}");
    }

    #[test]
    fn zipf_with_exponent_zero_is_uniform() {
        let zipf = Zipf::new(4, 0.0);
        assert_eq!(zipf.rank(0.0), 0);
        assert_eq!(zipf.rank(0.26), 1);
        assert_eq!(zipf.rank(0.51), 2);
        assert_eq!(zipf.rank(0.76), 3);
    }

    #[test]
    fn workload_draws_amounts_and_wallets_in_range() {
        let mix: Mix = "deposit=1,withdraw=1,transfer=1".parse().unwrap();
        let workload = Workload::new(
            mix,
            WalletChoice::Uniform { wallets: 3 },
            TransferPattern::Random,
            5..=7,
            1,
        );
        let mut rng = rng();
        for _ in 0..1000 {
            match workload.next(&mut rng) {
                Op::Write(w) => {
                    match w.kind {
                        WriteKind::Deposit { wallet } | WriteKind::Withdraw { wallet } => {
                            assert!(wallet < 3);
                        }
                        WriteKind::Transfer { from, to } => assert!(from < 3 && to < 3),
                        WriteKind::Capture { .. } => panic!("the mix has no payments"),
                    }
                    assert!((5..=7).contains(&w.amount));
                    assert_eq!(w.id.get_version(), Some(uuid::Version::SortRand));
                }
                other => panic!("the mix has no reads: {other:?}"),
            }
        }
    }

    /// The payments of a payment-only workload: how each of `draws` ends, with its amount.
    fn captures(amounts: RangeInclusive<u64>, draws: usize) -> Vec<(Settle, u64)> {
        let workload = Workload::new(
            "capture=1".parse().unwrap(),
            WalletChoice::Uniform { wallets: 2 },
            TransferPattern::Random,
            amounts,
            1,
        );
        let mut rng = rng();
        (0..draws)
            .map(|_| match workload.next(&mut rng) {
                Op::Write(Write {
                    kind: WriteKind::Capture { wallet, settle },
                    amount,
                    ..
                }) => {
                    assert!(wallet < 2);
                    (settle, amount)
                }
                other => panic!("a payment-only mix drew {other:?}"),
            })
            .collect()
    }

    #[test]
    fn one_payment_in_twenty_is_voided_and_one_in_ten_confirmed_in_part() {
        let drawn = captures(1..=100, 2000);
        let voids = drawn.iter().filter(|(s, _)| *s == Settle::Void).count();
        let parts: Vec<_> = drawn
            .iter()
            .filter_map(|&(settle, held)| match settle {
                Settle::ConfirmPart(amount) => Some((amount, held)),
                _ => None,
            })
            .collect();
        assert_eq!(voids, 100);
        // Amounts of 1 cannot be split; they are confirmed in full.
        let unsplittable = drawn
            .iter()
            .enumerate()
            .filter(|&(n, &(_, held))| n % 10 == 5 && held == 1)
            .count();
        assert_eq!(parts.len(), 200 - unsplittable);
        assert!(
            parts
                .iter()
                .all(|&(amount, held)| amount >= 1 && amount < held)
        );
        let full = drawn.iter().filter(|(s, _)| *s == Settle::Confirm).count();
        assert_eq!(full + voids + parts.len(), 2000);
    }

    #[test]
    fn holds_of_one_unit_are_never_confirmed_in_part() {
        let drawn = captures(1..=1, 100);
        assert!(
            drawn
                .iter()
                .all(|&(settle, _)| matches!(settle, Settle::Confirm | Settle::Void))
        );
    }

    #[test]
    fn a_hold_withdraws_what_was_confirmed_and_nothing_otherwise() {
        assert_eq!(Settle::Confirm.withdrawn(70), 70);
        assert_eq!(Settle::ConfirmPart(30).withdrawn(70), 30);
        for released in [Settle::Void, Settle::Expired, Settle::Pending] {
            assert_eq!(released.withdrawn(70), 0);
        }
    }

    /// The `(from, to)` pairs of `draws` transfers of a transfer-only workload.
    fn pairs(pattern: TransferPattern, wallets: WalletChoice, draws: usize) -> Vec<(u32, u32)> {
        let workload = Workload::new("transfer=1".parse().unwrap(), wallets, pattern, 1..=100, 1);
        let mut rng = rng();
        (0..draws)
            .map(|_| match workload.next(&mut rng) {
                Op::Write(Write {
                    kind: WriteKind::Transfer { from, to },
                    ..
                }) => (from, to),
                other => panic!("a transfer-only mix drew {other:?}"),
            })
            .collect()
    }

    #[test]
    fn random_pairs_are_distinct_and_cover_every_ordered_pair() {
        let drawn = pairs(
            TransferPattern::Random,
            WalletChoice::Uniform { wallets: 4 },
            10_000,
        );
        assert!(
            drawn
                .iter()
                .all(|&(from, to)| from != to && from < 4 && to < 4)
        );
        let distinct: std::collections::HashSet<_> = drawn.into_iter().collect();
        assert_eq!(distinct.len(), 4 * 3);
    }

    #[test]
    fn random_pairs_between_two_wallets_go_both_ways() {
        let drawn = pairs(
            TransferPattern::Random,
            WalletChoice::Uniform { wallets: 2 },
            100,
        );
        assert!(drawn.iter().all(|&pair| pair == (0, 1) || pair == (1, 0)));
        assert!(drawn.contains(&(0, 1)) && drawn.contains(&(1, 0)));
    }

    #[test]
    fn random_pairs_follow_zipf_and_stay_distinct_even_when_steep() {
        let drawn = pairs(
            TransferPattern::Random,
            WalletChoice::Zipf(Zipf::new(100, 1.0)),
            10_000,
        );
        assert!(
            drawn
                .iter()
                .all(|&(from, to)| from != to && from < 100 && to < 100)
        );
        let from_hottest = drawn.iter().filter(|&&(from, _)| from == 0).count();
        // Rank 0 weighs 1 / H(100) = 19% of a zipf draw with s = 1.
        assert!((1700..2100).contains(&from_hottest), "{from_hottest}");
        let steep = pairs(
            TransferPattern::Random,
            WalletChoice::Zipf(Zipf::new(10, 40.0)),
            1000,
        );
        assert!(steep.iter().all(|&(from, to)| from != to));
    }

    #[test]
    fn hot_merchant_is_paid_by_every_other_wallet() {
        let drawn = pairs(
            TransferPattern::HotMerchant,
            WalletChoice::Uniform { wallets: 5 },
            1000,
        );
        assert!(
            drawn
                .iter()
                .all(|&(from, to)| to == HOT_WALLET && from != HOT_WALLET)
        );
        let payers: std::collections::HashSet<_> = drawn.iter().map(|&(from, _)| from).collect();
        assert_eq!(payers, (1..5).collect());
    }

    #[test]
    fn hot_payer_pays_every_other_wallet() {
        let drawn = pairs(
            TransferPattern::HotPayer,
            WalletChoice::Uniform { wallets: 5 },
            1000,
        );
        assert!(
            drawn
                .iter()
                .all(|&(from, to)| from == HOT_WALLET && to != HOT_WALLET)
        );
        let payees: std::collections::HashSet<_> = drawn.iter().map(|&(_, to)| to).collect();
        assert_eq!(payees, (1..5).collect());
    }

    #[test]
    fn only_the_hot_payer_gets_the_large_funding() {
        assert_eq!(
            TransferPattern::HotPayer.funding(HOT_WALLET, 1_000),
            HOT_PAYER_BALANCE
        );
        assert_eq!(TransferPattern::HotPayer.funding(1, 1_000), 1_000);
        assert_eq!(
            TransferPattern::HotMerchant.funding(HOT_WALLET, 1_000),
            1_000
        );
        assert_eq!(TransferPattern::Random.funding(HOT_WALLET, 0), 0);
        let huge = HOT_PAYER_BALANCE * 2;
        assert_eq!(TransferPattern::HotPayer.funding(HOT_WALLET, huge), huge);
    }

    #[test]
    fn uniform_choice_of_another_wallet_skips_only_the_excluded_one() {
        let choice = WalletChoice::Uniform { wallets: 4 };
        let mut rng = rng();
        for excluded in 0..4 {
            let mut counts = [0u32; 4];
            for _ in 0..4000 {
                counts[choice.pick_other(excluded, &mut rng) as usize] += 1;
            }
            assert_eq!(counts[excluded as usize], 0, "{counts:?}");
            assert!(
                counts
                    .iter()
                    .enumerate()
                    .all(|(w, &n)| w == excluded as usize || (1200..1470).contains(&n)),
                "{counts:?}"
            );
        }
    }

    #[test]
    fn zipf_excluding_a_rank_keeps_the_others_in_proportion() {
        // Weights 1, 1/2, 1/3, 1/4; without rank 1 the rest share 19/12: 12/19, 4/19, 3/19.
        let zipf = Zipf::new(4, 1.0);
        let mut rng = rng();
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            counts[zipf.rank_excluding(rng.random(), 1) as usize] += 1;
        }
        assert_eq!(counts[1], 0);
        let share = |rank: usize| f64::from(counts[rank]) / 100_000.0;
        assert!((share(0) - 12.0 / 19.0).abs() < 0.01, "{counts:?}");
        assert!((share(2) - 4.0 / 19.0).abs() < 0.01, "{counts:?}");
        assert!((share(3) - 3.0 / 19.0).abs() < 0.01, "{counts:?}");
    }

    #[test]
    fn zipf_excluding_a_rank_never_draws_it_even_at_the_edges() {
        let zipf = Zipf::new(3, 1.0);
        for excluded in 0..3 {
            for u in [0.0, 0.25, 0.5, 0.75, 0.999_999_999_999, 1.0] {
                let rank = zipf.rank_excluding(u, excluded);
                assert!(rank != excluded && rank < 3, "u {u}, excluded {excluded}");
            }
        }
        let two = Zipf::new(2, 3.0);
        assert_eq!(two.rank_excluding(0.0, 0), 1);
        assert_eq!(two.rank_excluding(1.0, 0), 1);
        assert_eq!(two.rank_excluding(0.0, 1), 0);
        assert_eq!(two.rank_excluding(1.0, 1), 0);
    }
}
