//! What to send next: the request mix, the wallet choice and the amounts. Pure and cheap, because
//! it runs once per request on the same cores as the server under test.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use anyhow::{Context, bail, ensure};
use rand::RngExt;
use uuid::Uuid;

/// Largest amount (and balance) the API accepts: 2^53-1, exact in every JSON client.
pub const MAX_AMOUNT: u64 = (1 << 53) - 1;

/// The two kinds of money movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Deposit,
    Withdraw,
}

impl WriteKind {
    /// The `operationType` value of the API.
    pub fn as_api_str(self) -> &'static str {
        match self {
            WriteKind::Deposit => "DEPOSIT",
            WriteKind::Withdraw => "WITHDRAW",
        }
    }
}

/// One deposit or withdrawal, with the client-chosen id that makes it traceable and
/// idempotent. `wallet` indexes the run's wallet list, which keeps this `Copy` and small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write {
    pub wallet: u32,
    pub kind: WriteKind,
    pub amount: u64,
    pub id: Uuid,
}

impl Write {
    /// The change this write makes to its wallet's balance when applied.
    pub fn delta(&self) -> i128 {
        match self.kind {
            WriteKind::Deposit => i128::from(self.amount),
            WriteKind::Withdraw => -i128::from(self.amount),
        }
    }
}

/// One request of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Write(Write),
    Read {
        wallet: u32,
    },
    /// `GET /health/live`: the service's cost of HTTP alone, with no database work. Driven at
    /// full speed, it measures the ceiling that the wallet endpoints are compared with.
    Live,
}

/// Relative weights of deposits, withdrawals, balance reads and liveness checks, e.g.
/// `deposit=45,withdraw=45,read=10`. Missing kinds weigh zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    deposit: u32,
    withdraw: u32,
    read: u32,
    live: u32,
}

/// Which kind of request a mix roll chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Deposit,
    Withdraw,
    Read,
    Live,
}

impl Mix {
    fn total(&self) -> u32 {
        self.deposit + self.withdraw + self.read + self.live
    }

    /// Whether any request of the mix names a wallet. A mix of liveness checks alone needs no
    /// wallets: nothing to set up and nothing to verify.
    pub fn touches_wallets(&self) -> bool {
        self.deposit + self.withdraw + self.read > 0
    }

    /// Maps a roll in `0..total` onto a kind, in proportion to the weights.
    fn pick(&self, roll: u32) -> Kind {
        if roll < self.deposit {
            Kind::Deposit
        } else if roll < self.deposit + self.withdraw {
            Kind::Withdraw
        } else if roll < self.deposit + self.withdraw + self.read {
            Kind::Read
        } else {
            Kind::Live
        }
    }
}

impl FromStr for Mix {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        let mut weights = [None; 4];
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .with_context(|| format!("`{part}` is not of the form kind=weight"))?;
            let slot = match name.trim().to_ascii_lowercase().as_str() {
                "deposit" => 0,
                "withdraw" => 1,
                "read" => 2,
                "live" => 3,
                other => {
                    bail!("unknown request kind `{other}` (use deposit, withdraw, read, live)")
                }
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
        let [deposit, withdraw, read, live] = weights.map(|w| w.unwrap_or(0));
        let mix = Mix {
            deposit,
            withdraw,
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
        write!(
            f,
            "deposit={},withdraw={},read={}",
            self.deposit, self.withdraw, self.read
        )?;
        // Shown only when used, so the usual mixes read as they always have.
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
}

/// How a request chooses its wallet.
#[derive(Debug, Clone)]
pub enum WalletChoice {
    Uniform { wallets: u32 },
    Zipf(Zipf),
}

/// The request generator: a mix, a wallet choice and an amount range.
#[derive(Debug, Clone)]
pub struct Workload {
    mix: Mix,
    wallets: WalletChoice,
    amounts: RangeInclusive<u64>,
}

impl Workload {
    pub fn new(mix: Mix, wallets: WalletChoice, amounts: RangeInclusive<u64>) -> Self {
        Workload {
            mix,
            wallets,
            amounts,
        }
    }

    /// Draws the next request; write ids come from `rng` too, so no system call per request.
    pub fn next(&self, rng: &mut impl rand::Rng) -> Op {
        // `None` for a read; a liveness check names no wallet, so it returns before the draw.
        let write_kind = match self.mix.pick(rng.random_range(0..self.mix.total())) {
            Kind::Live => return Op::Live,
            Kind::Read => None,
            Kind::Deposit => Some(WriteKind::Deposit),
            Kind::Withdraw => Some(WriteKind::Withdraw),
        };
        let wallet = match &self.wallets {
            WalletChoice::Uniform { wallets } => rng.random_range(0..*wallets),
            WalletChoice::Zipf(zipf) => zipf.rank(rng.random()),
        };
        let Some(kind) = write_kind else {
            return Op::Read { wallet };
        };
        Op::Write(Write {
            wallet,
            kind,
            amount: rng.random_range(self.amounts.clone()),
            id: random_uuid(rng),
        })
    }
}

/// A version 4 UUID from a fast user-space generator. Operation ids only have to be unique,
/// not secret, and `rng` is seeded from the operating system once per runner.
pub fn random_uuid(rng: &mut impl rand::Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn rng() -> SmallRng {
        SmallRng::seed_from_u64(7)
    }

    #[test]
    fn mix_parses_percentages() {
        let mix: Mix = "deposit=45,withdraw=45,read=10".parse().unwrap();
        assert_eq!(
            mix,
            Mix {
                deposit: 45,
                withdraw: 45,
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
                read: 1,
                live: 0
            }
        );
    }

    #[test]
    fn mix_rejects_unknown_duplicate_malformed_and_all_zero() {
        assert!("transfer=1".parse::<Mix>().is_err());
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
    }

    #[test]
    fn mix_shows_live_only_when_used() {
        let mix: Mix = "deposit=1".parse().unwrap();
        assert_eq!(mix.to_string(), "deposit=1,withdraw=0,read=0");
        let mix: Mix = "live=100".parse().unwrap();
        assert_eq!(mix.to_string(), "deposit=0,withdraw=0,read=0,live=100");
    }

    #[test]
    fn only_a_mix_of_liveness_checks_leaves_wallets_alone() {
        assert!(!"live=100".parse::<Mix>().unwrap().touches_wallets());
        assert!("live=99,read=1".parse::<Mix>().unwrap().touches_wallets());
        assert!("withdraw=1".parse::<Mix>().unwrap().touches_wallets());
    }

    #[test]
    fn live_mix_draws_only_liveness_checks() {
        let mix: Mix = "live=1".parse().unwrap();
        let workload = Workload::new(mix, WalletChoice::Uniform { wallets: 1 }, 1..=1);
        let mut rng = rng();
        assert!((0..100).all(|_| workload.next(&mut rng) == Op::Live));
    }

    #[test]
    fn mix_pick_follows_the_weights_exactly() {
        let mix: Mix = "deposit=2,withdraw=1,read=1,live=1".parse().unwrap();
        let kinds: Vec<Kind> = (0..mix.total()).map(|roll| mix.pick(roll)).collect();
        assert_eq!(
            kinds,
            [
                Kind::Deposit,
                Kind::Deposit,
                Kind::Withdraw,
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
        let mix: Mix = "deposit=1,withdraw=1".parse().unwrap();
        let workload = Workload::new(mix, WalletChoice::Uniform { wallets: 3 }, 5..=7);
        let mut rng = rng();
        for _ in 0..1000 {
            match workload.next(&mut rng) {
                Op::Write(w) => {
                    assert!(w.wallet < 3);
                    assert!((5..=7).contains(&w.amount));
                    assert_eq!(w.id.get_version_num(), 4);
                }
                Op::Read { .. } | Op::Live => panic!("the mix has no reads"),
            }
        }
    }

    #[test]
    fn write_delta_is_signed_by_kind() {
        let write = Write {
            wallet: 0,
            kind: WriteKind::Withdraw,
            amount: 5,
            id: Uuid::nil(),
        };
        assert_eq!(write.delta(), -5);
        let deposit = Write {
            kind: WriteKind::Deposit,
            ..write
        };
        assert_eq!(deposit.delta(), 5);
    }
}
