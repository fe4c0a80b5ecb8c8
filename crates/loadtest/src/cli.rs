//! Command-line interface: every knob of a run, parsed and checked before any request is sent,
//! so that a typo fails in milliseconds instead of after a long setup.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, ensure};
use clap::{Args, Parser, ValueEnum};
use lapin::uri::AMQPUri;
use reqwest::Url;

use crate::api::MAX_BATCH_ITEMS;
use crate::workload::{MAX_AMOUNT, Mix, TransferPattern};

/// Load generator and consistency checker for the wallet HTTP API.
///
/// Creates its own fresh wallets, drives them at a fixed arrival rate (open loop) or with a
/// fixed number of busy clients (closed loop), reports throughput and latency, then proves
/// that every balance equals what the server acknowledged.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Base URL of the wallet service; no request goes anywhere else.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: Url,

    #[command(flatten)]
    pub pace: Pace,

    /// How long to generate load: `30`, `30s`, `500ms` or `2m`.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Duration,

    /// Number of fresh wallets to spread the load over (1 = a single hot wallet; transfers
    /// need 2 or more); none are created when the mix is liveness checks alone.
    #[arg(long, default_value = "1")]
    pub wallets: NonZeroU32,

    /// How requests pick their wallet.
    #[arg(long, value_enum, default_value_t = Distribution::Uniform)]
    pub distribution: Distribution,

    /// Exponent of the zipf distribution: 0 is uniform, larger is more skewed.
    #[arg(long, default_value_t = 1.0)]
    pub zipf_s: f64,

    /// Share of each request kind, as percentages or relative weights: `deposit`, `withdraw`,
    /// `transfer` (between two of the wallets, see `--transfers`), `capture` (a payment: a
    /// pending withdrawal that holds the amount, then `confirm` of that hold, of part of it one
    /// time in 10, or `void` one time in 20; the two requests count as one, timed together),
    /// `read` (a balance) and `live` (`GET /health/live`, which does no database work:
    /// `--mix live=100` measures the ceiling of the service's HTTP layer). Payments drain their
    /// wallets: fund them with `--initial-balance` for a long run.
    #[arg(long, default_value = "deposit=45,withdraw=45,read=10")]
    pub mix: Mix,

    /// Which wallets transfers move money between; only with `transfer` in `--mix`, where it
    /// defaults to `random`.
    #[arg(long, value_enum)]
    pub transfers: Option<TransferPattern>,

    /// Operations per request, 1 to 1000. Above 1, each request is one `POST /api/v1/batches`
    /// of this many deposits, withdrawals and transfers drawn from `--mix` as single requests
    /// are, each named by its own id and decided on its own (the batch is not atomic);
    /// payments, reads and liveness checks cannot be batched. Latency stays per request.
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,

    /// Smallest amount of a deposit, withdrawal or transfer, in minor units.
    #[arg(long, default_value_t = 1)]
    pub amount_min: u64,

    /// Largest amount of a deposit, withdrawal or transfer, in minor units.
    #[arg(long, default_value_t = 100)]
    pub amount_max: u64,

    /// Deposit made into every wallet before the run (0 = start empty); the payer of
    /// `--transfers hot-payer` gets at least 10^12 so that it cannot run dry.
    #[arg(long, default_value_t = 1_000_000)]
    pub initial_balance: u64,

    /// Open loop only: requests allowed in flight at once before sends fall behind schedule.
    #[arg(long, default_value = "10000")]
    pub max_in_flight: NonZeroUsize,

    /// Per-request timeout: `10`, `10s` or `1500ms`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Runtime worker threads of the load generator itself; it shares the machine with the
    /// server, so the default stays at one.
    #[arg(long, default_value = "1")]
    pub threads: NonZeroUsize,

    /// Wallets whose full operation history is paged through and checked after the run.
    #[arg(long, default_value_t = 20)]
    pub verify_history_sample: usize,

    /// Also check the service's event stream: before creating its wallets, bind a private
    /// queue to every event of the `wallet.events` exchange on this RabbitMQ broker (AMQP
    /// 0.9.1), e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`, consume it during the run, and
    /// fail the run unless every acknowledged or rejected write published its events with the
    /// ids and amounts sent, no event names a write never sent, and each wallet's events
    /// arrived in commit order (the balances they carry add up in arrival order). Writes whose
    /// answer was lost may or may not have events. Duplicates are counted, not failed.
    #[arg(long, value_name = "URL", value_parser = parse_amqp_url)]
    pub events_amqp_url: Option<AMQPUri>,

    /// How long to wait for the event stream to catch up after the load and the balance
    /// verification; the wait ends as soon as every expected event has arrived. Only with
    /// `--events-amqp-url`; `30`, `30s`, `500ms` or `2m`.
    #[arg(long, default_value = "30s", value_parser = parse_duration, requires = "events_amqp_url")]
    pub events_grace: Duration,

    /// Write the full report (summary, timeline, verification) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Draw throughput and p99 latency over time as an SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// No progress bar and no phase messages on stderr; the report still goes to stdout.
    #[arg(long)]
    pub quiet: bool,
}

/// Exactly one way to pace the load.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Pace {
    /// Open loop: start this many requests per second on a fixed schedule, however slow the
    /// answers are; latency counts from the scheduled start (no coordinated omission).
    #[arg(long)]
    rate: Option<NonZeroU32>,

    /// Closed loop: this many clients, each sending its next request as soon as the previous
    /// one is answered.
    #[arg(long)]
    concurrency: Option<NonZeroU32>,
}

/// How requests are paced, resolved from the `--rate` / `--concurrency` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Fixed arrival rate in requests per second.
    Open { rate: NonZeroU32 },
    /// Fixed number of clients with one request each in flight.
    Closed { concurrency: NonZeroU32 },
}

/// How a request chooses among the wallets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Distribution {
    /// Every wallet equally likely.
    Uniform,
    /// A few hot wallets take most of the load, as in real payment traffic.
    Zipf,
}

impl Cli {
    /// The pacing mode; clap's argument group guarantees exactly one flag is present.
    pub fn mode(&self) -> Mode {
        match (self.pace.rate, self.pace.concurrency) {
            (Some(rate), None) => Mode::Open { rate },
            (None, Some(concurrency)) => Mode::Closed { concurrency },
            _ => unreachable!("clap enforces exactly one of --rate and --concurrency"),
        }
    }

    /// Which wallets the run's transfers move money between.
    pub fn transfer_pattern(&self) -> TransferPattern {
        self.transfers.unwrap_or(TransferPattern::Random)
    }

    /// Checks the rules that span several flags or that clap cannot express.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            matches!(self.url.scheme(), "http" | "https"),
            "--url must be an http(s) URL"
        );
        ensure!(
            self.duration > Duration::ZERO,
            "--duration must be positive"
        );
        ensure!(self.timeout > Duration::ZERO, "--timeout must be positive");
        ensure!(
            self.zipf_s.is_finite() && self.zipf_s >= 0.0,
            "--zipf-s must be a finite number >= 0"
        );
        ensure!(
            (1..=self.amount_max).contains(&self.amount_min) && self.amount_max <= MAX_AMOUNT,
            "amounts must satisfy 1 <= --amount-min <= --amount-max <= {MAX_AMOUNT}"
        );
        ensure!(
            self.initial_balance <= MAX_AMOUNT,
            "--initial-balance must be at most {MAX_AMOUNT}"
        );
        ensure!(
            self.transfers.is_none() || self.mix.has_transfers(),
            "--transfers needs a `transfer` weight in --mix"
        );
        ensure!(
            !self.mix.has_transfers() || self.wallets.get() >= 2,
            "transfers need two distinct wallets: --wallets 2 or more"
        );
        ensure!(
            (1..=MAX_BATCH_ITEMS).contains(&self.batch_size),
            "--batch-size must be 1 to {MAX_BATCH_ITEMS}, the most items a batch takes"
        );
        ensure!(
            self.batch_size == 1 || self.mix.batchable(),
            "--batch-size above 1 batches deposits, withdrawals and transfers only: take \
             capture, read and live out of --mix"
        );
        ensure!(
            self.events_amqp_url.is_none() || self.mix.touches_wallets(),
            "--events-amqp-url checks the events of the run's wallets: a mix of liveness \
             checks alone has none"
        );
        Ok(())
    }
}

/// Parses the broker's URL, `amqp://` or `amqps://`, before anything is sent.
fn parse_amqp_url(text: &str) -> anyhow::Result<AMQPUri> {
    let mut uri: AMQPUri = text.parse().map_err(|error| {
        anyhow!("not an AMQP URL such as amqp://guest:guest@127.0.0.1:5672/%2f: {error}")
    })?;
    // amq-protocol-uri reads a host name but takes an IP address for `localhost`, which may
    // resolve to another address: keep the address given.
    let url = Url::parse(text)?;
    if url.domain().is_none()
        && let Some(address) = url.host_str()
    {
        uri.authority.host = address.trim_matches(['[', ']']).to_owned();
    }
    Ok(uri)
}

/// Parses a duration in humantime's notation (`90s`, `1500ms`, `2m`, `1m 30s`); a bare number,
/// which the load tester has always taken, still means seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| anyhow!("`{text}` is not a non-negative number of seconds"));
    }
    humantime::parse_duration(text)
        .with_context(|| format!("`{text}` is not a duration such as 30, 30s, 500ms or 2m"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("wallet-loadtest").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn duration_accepts_seconds_milliseconds_and_minutes() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1m 30s").unwrap(), Duration::from_secs(90));
    }

    #[test]
    fn duration_rejects_garbage_and_negatives() {
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("NaN").is_err());
        assert!(parse_duration("10 parsecs").is_err());
    }

    #[test]
    fn rate_and_concurrency_are_mutually_exclusive() {
        assert!(parse(&["--rate", "10", "--concurrency", "2", "--duration", "1"]).is_err());
        assert!(parse(&["--duration", "1"]).is_err());
    }

    #[test]
    fn rate_selects_open_loop_with_defaults() {
        let cli = parse(&["--rate", "1000", "--duration", "10"]).unwrap();
        assert_eq!(
            cli.mode(),
            Mode::Open {
                rate: NonZeroU32::new(1000).unwrap()
            }
        );
        assert_eq!(cli.url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(cli.timeout, Duration::from_secs(10));
        cli.validate().unwrap();
    }

    #[test]
    fn concurrency_selects_closed_loop() {
        let cli = parse(&["--concurrency", "50", "--duration", "10"]).unwrap();
        assert_eq!(
            cli.mode(),
            Mode::Closed {
                concurrency: NonZeroU32::new(50).unwrap()
            }
        );
    }

    #[test]
    fn liveness_mix_is_accepted() {
        let cli = parse(&[
            "--concurrency",
            "64",
            "--duration",
            "15s",
            "--mix",
            "live=100",
        ])
        .unwrap();
        cli.validate().unwrap();
        assert!(!cli.mix.touches_wallets());
    }

    #[test]
    fn payments_on_one_hot_wallet_are_accepted() {
        let cli = parse(&[
            "--concurrency",
            "64",
            "--duration",
            "15s",
            "--mix",
            "capture=100",
            "--initial-balance",
            "1000000000000",
        ])
        .unwrap();
        cli.validate().unwrap();
        assert_eq!(cli.mix, "capture=100".parse().unwrap());
        assert_eq!(cli.wallets.get(), 1);
    }

    #[test]
    fn transfers_default_to_random_pairs() {
        let cli = parse(&[
            "--rate",
            "1",
            "--duration",
            "1",
            "--wallets",
            "10",
            "--mix",
            "transfer=100",
        ])
        .unwrap();
        cli.validate().unwrap();
        assert_eq!(cli.transfer_pattern(), TransferPattern::Random);
    }

    #[test]
    fn transfer_pattern_is_chosen_by_name() {
        let cli = parse(&[
            "--concurrency",
            "64",
            "--duration",
            "1",
            "--wallets",
            "1001",
            "--mix",
            "transfer=100",
            "--transfers",
            "hot-merchant",
        ])
        .unwrap();
        cli.validate().unwrap();
        assert_eq!(cli.transfer_pattern(), TransferPattern::HotMerchant);
        assert!(
            parse(&[
                "--rate",
                "1",
                "--duration",
                "1",
                "--transfers",
                "hot-wallet"
            ])
            .is_err()
        );
    }

    #[test]
    fn transfer_pattern_without_transfers_in_the_mix_is_refused() {
        let cli = parse(&[
            "--rate",
            "1",
            "--duration",
            "1",
            "--wallets",
            "10",
            "--transfers",
            "hot-payer",
        ])
        .unwrap();
        assert!(cli.validate().is_err());
    }

    #[test]
    fn transfers_on_a_single_wallet_are_refused() {
        let cli = parse(&["--rate", "1", "--duration", "1", "--mix", "transfer=1"]).unwrap();
        assert!(cli.validate().is_err());
    }

    #[test]
    fn batch_size_defaults_to_one_request_per_operation() {
        let cli = parse(&["--rate", "1", "--duration", "1"]).unwrap();
        assert_eq!(cli.batch_size, 1);
        cli.validate().unwrap();
    }

    #[test]
    fn batches_of_deposits_withdrawals_and_transfers_are_accepted() {
        for mix in [
            "deposit=50,withdraw=50",
            "transfer=100",
            "deposit=1,transfer=1",
        ] {
            let cli = parse(&[
                "--concurrency",
                "64",
                "--duration",
                "5s",
                "--wallets",
                "10000",
                "--mix",
                mix,
                "--batch-size",
                "100",
            ])
            .unwrap();
            cli.validate().unwrap();
            assert_eq!(cli.batch_size, 100);
        }
        let largest = parse(&[
            "--rate",
            "1",
            "--duration",
            "1",
            "--mix",
            "deposit=1",
            "--batch-size",
            "1000",
        ]);
        largest.unwrap().validate().unwrap();
    }

    #[test]
    fn batch_size_out_of_range_is_refused() {
        for size in ["0", "1001"] {
            let cli = parse(&[
                "--rate",
                "1",
                "--duration",
                "1",
                "--mix",
                "deposit=1",
                "--batch-size",
                size,
            ])
            .unwrap();
            let error = cli.validate().unwrap_err().to_string();
            assert!(error.contains("--batch-size must be 1 to 1000"), "{error}");
        }
        assert!(parse(&["--rate", "1", "--duration", "1", "--batch-size", "-1"]).is_err());
    }

    #[test]
    fn batches_of_payments_reads_or_liveness_checks_are_refused() {
        for mix in [
            "capture=1",
            "deposit=9,read=1",
            "live=100",
            "withdraw=1,capture=1",
        ] {
            let cli = parse(&[
                "--rate",
                "1",
                "--duration",
                "1",
                "--mix",
                mix,
                "--batch-size",
                "2",
            ])
            .unwrap();
            let error = cli.validate().unwrap_err().to_string();
            assert!(
                error.contains("take capture, read and live out"),
                "{mix}: {error}"
            );
            // The same mix is fine one request at a time.
            let single = parse(&["--rate", "1", "--duration", "1", "--mix", mix]).unwrap();
            single.validate().unwrap();
        }
    }

    #[test]
    fn events_are_not_checked_unless_asked_for() {
        let cli = parse(&["--rate", "1", "--duration", "1"]).unwrap();
        assert!(cli.events_amqp_url.is_none());
        assert_eq!(cli.events_grace, Duration::from_secs(30));
        cli.validate().unwrap();
    }

    #[test]
    fn event_stream_is_named_by_its_broker_url_with_a_grace_period() {
        let cli = parse(&[
            "--rate",
            "1",
            "--duration",
            "1",
            "--events-amqp-url",
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            "--events-grace",
            "5s",
        ])
        .unwrap();
        cli.validate().unwrap();
        let uri = cli.events_amqp_url.unwrap();
        assert_eq!(uri.authority.host, "127.0.0.1");
        assert_eq!(uri.authority.port, 5672);
        assert_eq!(uri.vhost, "/");
        assert_eq!(cli.events_grace, Duration::from_secs(5));
        let default_grace = parse(&[
            "--rate",
            "1",
            "--duration",
            "1",
            "--events-amqp-url",
            "amqp://127.0.0.1",
        ])
        .unwrap();
        assert_eq!(default_grace.events_grace, Duration::from_secs(30));
        let named = parse_amqp_url("amqps://user:pass@broker.example:5671/wallets").unwrap();
        assert_eq!(named.authority.host, "broker.example");
        assert_eq!(named.vhost, "wallets");
        let v6 = parse_amqp_url("amqp://[::1]:5672").unwrap();
        assert_eq!(v6.authority.host, "::1");
    }

    #[test]
    fn event_stream_url_must_be_amqp() {
        for url in ["http://127.0.0.1:5672", "127.0.0.1:5672", ""] {
            let parsed = parse(&["--rate", "1", "--duration", "1", "--events-amqp-url", url]);
            assert!(parsed.is_err(), "{url}");
        }
        let bad_grace = parse(&[
            "--rate",
            "1",
            "--duration",
            "1",
            "--events-amqp-url",
            "amqp://127.0.0.1",
            "--events-grace",
            "soon",
        ]);
        assert!(bad_grace.is_err());
    }

    #[test]
    fn events_grace_without_a_broker_is_refused() {
        let error = parse(&["--rate", "1", "--duration", "1", "--events-grace", "5s"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--events-amqp-url"), "{error}");
    }

    #[test]
    fn events_of_a_run_without_wallets_are_refused() {
        let cli = parse(&[
            "--rate",
            "1",
            "--duration",
            "1",
            "--mix",
            "live=100",
            "--events-amqp-url",
            "amqp://127.0.0.1",
        ])
        .unwrap();
        let error = cli.validate().unwrap_err().to_string();
        assert!(error.contains("liveness checks alone"), "{error}");
    }

    #[test]
    fn inverted_amount_range_is_refused() {
        let cli = parse(&[
            "--rate",
            "1",
            "--duration",
            "1",
            "--amount-min",
            "10",
            "--amount-max",
            "5",
        ])
        .unwrap();
        assert!(cli.validate().is_err());
    }
}
