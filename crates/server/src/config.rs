//! Configuration: `config.env` (or `--config PATH`), then the environment, then flags; each
//! later source overrides the earlier ones.

use crate::http::{ApiTokens, ConnectionLimits, HttpPolicy};
use crate::ledger::{LedgerConfig, TransferRouting};
use crate::telemetry::LogFormat;
use clap::{Args, Parser};
use secrecy::{ExposeSecret, SecretString};
use std::ffi::OsString;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The file read when `--config` is not given. Missing is fine; everything has a default.
const DEFAULT_CONFIG_FILE: &str = "config.env";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "wallet-server",
    version,
    about = "Wallet HTTP API over PostgreSQL",
    // A flag given twice takes its last value, so a wrapper's defaults can be overridden.
    args_override_self = true,
    after_help = "Durations take a unit (`5s`, `250ms`, `1m`); a bare number is milliseconds. \
        The older `*_MS` variables and `--*-ms` flags (milliseconds) still work; where both \
        spellings are set, the one without `_MS` wins."
)]
pub struct Config {
    /// KEY=VALUE file read before the environment [default: ./config.env when present]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub ledger: LedgerArgs,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub events: EventsArgs,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// PostgreSQL: where, how many connections, how long to wait.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseArgs {
    /// PostgreSQL URL; the database is created if missing
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/wallet",
        hide_env_values = true,
        hide_default_value = true,
        value_parser = secret
    )]
    pub url: SecretString,

    /// Connections in the pool that serves reads and wallet creation
    #[arg(long = "db-pool-size", env = "WALLET_DB_POOL_SIZE", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,

    /// Longest one SQL statement may run before PostgreSQL cancels it [default: 5s]
    #[arg(long = "db-statement-timeout", env = "WALLET_DB_STATEMENT_TIMEOUT",
          value_parser = duration)]
    statement_timeout: Option<Duration>,
    #[arg(long = "db-statement-timeout-ms", env = "WALLET_DB_STATEMENT_TIMEOUT_MS", hide = true,
          value_parser = millis)]
    statement_timeout_ms: Option<Duration>,

    /// Longest a read waits for a free pool connection before a 503 [default: 2s]
    #[arg(long = "db-acquire-timeout", env = "WALLET_DB_ACQUIRE_TIMEOUT",
          value_parser = duration)]
    acquire_timeout: Option<Duration>,
    #[arg(long = "db-acquire-timeout-ms", env = "WALLET_DB_ACQUIRE_TIMEOUT_MS", hide = true,
          value_parser = millis)]
    acquire_timeout_ms: Option<Duration>,

    /// Longest start-up waits for a database that does not answer yet (still starting,
    /// unreachable), retrying with backoff; 0 gives up at the first failure
    #[arg(long = "db-startup-timeout", env = "WALLET_DB_STARTUP_TIMEOUT", default_value = "30s",
          value_parser = duration_or_zero)]
    pub startup_timeout: Duration,
}

impl DatabaseArgs {
    pub fn statement_timeout(&self) -> Duration {
        either(self.statement_timeout, self.statement_timeout_ms, 5000)
    }

    pub fn acquire_timeout(&self) -> Duration {
        either(self.acquire_timeout, self.acquire_timeout_ms, 2000)
    }
}

/// The group-commit writers.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Ledger")]
pub struct LedgerArgs {
    /// Writer tasks, each with its own connection; wallets are spread over them by id
    /// [default: 1, on Citus 4]
    #[arg(long, env = "WALLET_SHARDS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub shards: Option<u16>,

    /// Most operations per transaction; 1 means one transaction per request
    #[arg(long, env = "WALLET_MAX_BATCH", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_batch: u32,

    /// Requests queued per writer (and balance reads queued) before new ones wait for room
    #[arg(long, env = "WALLET_QUEUE_CAPACITY", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub queue_capacity: u32,

    /// Which writer takes a transfer between wallets of two writers
    #[arg(long, env = "WALLET_TRANSFER_ROUTING", value_enum,
          default_value_t = TransferRouting::Busier)]
    pub transfer_routing: TransferRouting,

    /// Longest a request waits for the database, retries included, before a 503 [default: 5s]
    #[arg(long = "request-timeout", env = "WALLET_REQUEST_TIMEOUT", value_parser = duration)]
    request_timeout: Option<Duration>,
    #[arg(long = "request-timeout-ms", env = "WALLET_REQUEST_TIMEOUT_MS", hide = true,
          value_parser = millis)]
    request_timeout_ms: Option<Duration>,

    /// How often this instance looks for pending holds past their expiry; a hold expires at
    /// most this long after its time, plus its commit
    #[arg(long, env = "WALLET_HOLD_EXPIRY_INTERVAL", default_value = "250ms",
          value_parser = duration)]
    pub hold_expiry_interval: Duration,
}

impl LedgerArgs {
    pub fn request_timeout(&self) -> Duration {
        either(self.request_timeout, self.request_timeout_ms, 5000)
    }
}

impl From<&LedgerArgs> for LedgerConfig {
    fn from(args: &LedgerArgs) -> Self {
        Self {
            shards: args.shards.map(usize::from),
            max_batch: args.max_batch as usize,
            queue_capacity: args.queue_capacity as usize,
            transfer_routing: args.transfer_routing,
            request_timeout: args.request_timeout(),
        }
    }
}

/// The public listener: addresses, limits, access.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "HTTP")]
pub struct HttpArgs {
    /// Address the HTTP API listens on (host:port; port 0 picks a free one)
    #[arg(long, env = "WALLET_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: String,

    /// Connections the kernel queues for the listener before it accepts them; a burst of
    /// connects larger than this waits for SYN retries (capped by net.core.somaxconn)
    #[arg(long, env = "WALLET_LISTEN_BACKLOG", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=65_535))]
    pub listen_backlog: u32,

    /// Bearer tokens that may call `/api/`, comma-separated; each either the token itself or
    /// `sha256:<hex digest>` so the configuration holds no secret. Empty: no authentication
    #[arg(long, env = "WALLET_API_TOKENS", default_value = "", hide_env_values = true,
          hide_default_value = true, value_parser = secret)]
    pub api_tokens: SecretString,

    /// Largest request body (bytes); larger gets 413
    #[arg(long, env = "WALLET_MAX_BODY_BYTES", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u64).range(64..=16 * 1024 * 1024))]
    pub max_body_bytes: u64,

    /// Longest a client may take to send a request's headers; the connection is closed
    /// [default: 10s]
    #[arg(long = "header-read-timeout", env = "WALLET_HEADER_READ_TIMEOUT",
          value_parser = duration)]
    header_read_timeout: Option<Duration>,
    #[arg(long = "header-read-timeout-ms", env = "WALLET_HEADER_READ_TIMEOUT_MS", hide = true,
          value_parser = millis)]
    header_read_timeout_ms: Option<Duration>,

    /// Open client connections at most; one more is answered 503 and closed
    #[arg(long, env = "WALLET_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Most items in one `POST /api/v1/batches`; that route takes bodies of up to 512 bytes
    /// per item
    #[arg(long, env = "WALLET_MAX_BATCH_ITEMS", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_batch_items: u32,

    /// Largest history page (`limit`)
    #[arg(long, env = "WALLET_MAX_PAGE_SIZE", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_page_size: u32,

    /// Longest a shutdown (SIGTERM, SIGINT) waits for requests and batches in flight
    /// [default: 10s]
    #[arg(long = "shutdown-timeout", env = "WALLET_SHUTDOWN_TIMEOUT", value_parser = duration)]
    shutdown_timeout: Option<Duration>,
    #[arg(long = "shutdown-timeout-ms", env = "WALLET_SHUTDOWN_TIMEOUT_MS", hide = true,
          value_parser = millis)]
    shutdown_timeout_ms: Option<Duration>,
}

impl HttpArgs {
    pub fn header_read_timeout(&self) -> Duration {
        either(
            self.header_read_timeout,
            self.header_read_timeout_ms,
            10_000,
        )
    }

    pub fn shutdown_timeout(&self) -> Duration {
        either(self.shutdown_timeout, self.shutdown_timeout_ms, 10_000)
    }

    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections as usize,
            header_read_timeout: self.header_read_timeout(),
        }
    }
}

/// Logs and the operators' listener.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Telemetry")]
pub struct TelemetryArgs {
    /// Address of the admin listener: Prometheus metrics and CPU profiles (host:port; port 0
    /// picks a free one). Keep it off the public network.
    #[arg(long, env = "WALLET_ADMIN_ADDR", default_value = "127.0.0.1:9090")]
    pub admin_addr: String,

    /// Log filter, e.g. `info` or `info,wallet_server=debug`
    #[arg(long, env = "RUST_LOG", default_value = "info,sqlx=warn")]
    pub log: String,

    /// Log line format: `json` for collectors, `pretty` for terminals
    #[arg(long, env = "WALLET_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

/// The event stream.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Events")]
pub struct EventsArgs {
    /// RabbitMQ (AMQP 0.9.1) URL, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`: every
    /// committed change is published to the topic exchange `wallet.events`. Unset or empty:
    /// no events, and no outbox writes
    #[arg(long = "events-amqp-url", env = "WALLET_EVENTS_AMQP_URL", hide_env_values = true,
          value_parser = secret)]
    amqp_url: Option<SecretString>,
}

impl EventsArgs {
    /// The broker's URL when events are on; a URL that cannot be one is refused.
    pub fn broker(&self) -> anyhow::Result<Option<SecretString>> {
        let Some(url) = self
            .amqp_url
            .clone()
            .filter(|url| !url.expose_secret().trim().is_empty())
        else {
            return Ok(None);
        };
        // The parser's message may quote the URL, password included: not shown.
        lapin::uri::AMQPUri::from_str(url.expose_secret())
            .map_err(|_| anyhow::anyhow!("WALLET_EVENTS_AMQP_URL is not a valid AMQP URL"))?;
        Ok(Some(url))
    }
}

impl Config {
    /// Reads the configuration file, then parses the environment and `args` over it.
    pub fn load(args: Vec<OsString>) -> Result<Self, clap::Error> {
        load_file(config_path(&args))?;
        Self::try_parse_from(args)
    }

    /// The request-level rules of the HTTP layer.
    pub fn http_policy(&self) -> Result<HttpPolicy, String> {
        let tokens = ApiTokens::parse(self.http.api_tokens.expose_secret())
            .map_err(|why| format!("WALLET_API_TOKENS: {why}"))?;
        let max_body_bytes = self.http.max_body_bytes as usize;
        Ok(HttpPolicy {
            max_body_bytes,
            max_batch_body_bytes: max_body_bytes
                .max(self.http.max_batch_items as usize * BATCH_ITEM_BYTES),
            // Longer than the ledger's deadline, so that the ledger's own 503 comes first.
            request_time_limit: self.ledger.request_timeout() + REQUEST_TIME_MARGIN,
            tokens,
        })
    }
}

/// Body bytes a batch may take per item: a transfer with every field set is about 230 bytes
/// of compact JSON.
const BATCH_ITEM_BYTES: usize = 512;

/// How much longer than the ledger's deadline a request may take in all.
const REQUEST_TIME_MARGIN: Duration = Duration::from_secs(1);

/// Longest duration any setting takes.
const MAX_DURATION: Duration = Duration::from_secs(3600);

/// A duration setting under its current name, else its older `_MS` name, else `default_ms`.
fn either(current: Option<Duration>, millis: Option<Duration>, default_ms: u64) -> Duration {
    current
        .or(millis)
        .unwrap_or(Duration::from_millis(default_ms))
}

/// `5s`, `250ms`, `1m 30s`; a bare number is milliseconds (the unit of the older settings).
/// Between 1 ms and 1 h.
fn duration(text: &str) -> Result<Duration, String> {
    match duration_or_zero(text)? {
        Duration::ZERO => Err("must be at least 1ms".into()),
        value => Ok(value),
    }
}

/// Like [`duration`], but 0 is allowed.
fn duration_or_zero(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let value = match text.parse::<u64>() {
        Ok(millis) => Duration::from_millis(millis),
        Err(_) => humantime::parse_duration(text).map_err(|error| error.to_string())?,
    };
    if value > MAX_DURATION {
        return Err("must not exceed 1h".into());
    }
    Ok(value)
}

/// Milliseconds, for the older `_MS` names.
fn millis(text: &str) -> Result<Duration, String> {
    let millis: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("expected a whole number of milliseconds, got {text:?}"))?;
    duration(&millis.to_string())
}

fn secret(text: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(text))
}

/// `--config PATH` / `--config=PATH`, found before clap runs because the file feeds clap.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().map(|p| PathBuf::from(p.as_ref()));
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// Sets the file's variables that the environment does not already set.
fn load_file(explicit: Option<PathBuf>) -> Result<(), clap::Error> {
    let (path, required) = match explicit {
        Some(path) => (path, true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    match dotenvy::from_path(&path) {
        Ok(()) => Ok(()),
        Err(dotenvy::Error::Io(error))
            if !required && error.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(())
        }
        Err(error) => Err(clap::Error::raw(
            clap::error::ErrorKind::InvalidValue,
            format!("cannot read config file {}: {error}\n", path.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn config_path_is_found_in_both_spellings() {
        assert_eq!(
            config_path(&args(&["x", "--config", "a.env"])),
            Some("a.env".into())
        );
        assert_eq!(
            config_path(&args(&["x", "--config=b.env"])),
            Some("b.env".into())
        );
        assert_eq!(config_path(&args(&["x", "--shards", "2"])), None);
    }

    #[test]
    fn flags_are_validated() {
        assert!(Config::try_parse_from(["x", "--shards", "0"]).is_err());
        assert!(Config::try_parse_from(["x", "--max-batch", "many"]).is_err());
        let config = Config::try_parse_from(["x", "--max-batch", "1"]).unwrap();
        assert_eq!(LedgerConfig::from(&config.ledger).max_batch, 1);
        assert!(Config::try_parse_from(["x", "--log-format", "xml"]).is_err());
        let config = Config::try_parse_from(["x", "--shards", "2", "--shards", "3"]).unwrap();
        assert_eq!(config.ledger.shards, Some(3));
        let config = Config::try_parse_from(["x", "--log-format", "json"]).unwrap();
        assert_eq!(config.telemetry.log_format, LogFormat::Json);
    }

    #[test]
    fn durations_take_units_and_the_older_millisecond_names_still_work() {
        let config = Config::try_parse_from(["x"]).unwrap();
        assert_eq!(config.ledger.request_timeout(), Duration::from_secs(5));
        assert_eq!(config.database.startup_timeout, Duration::from_secs(30));
        let config = Config::try_parse_from(["x", "--request-timeout", "250ms"]).unwrap();
        assert_eq!(config.ledger.request_timeout(), Duration::from_millis(250));
        let config = Config::try_parse_from(["x", "--request-timeout-ms", "700"]).unwrap();
        assert_eq!(config.ledger.request_timeout(), Duration::from_millis(700));
        let both = [
            "x",
            "--shutdown-timeout-ms",
            "700",
            "--shutdown-timeout",
            "2s",
        ];
        let config = Config::try_parse_from(both).unwrap();
        assert_eq!(config.http.shutdown_timeout(), Duration::from_secs(2));
        let config = Config::try_parse_from(["x", "--header-read-timeout", "1m 30s"]).unwrap();
        assert_eq!(config.http.header_read_timeout(), Duration::from_secs(90));
        for bad in ["0", "0s", "2h", "soon", "-1"] {
            assert!(
                Config::try_parse_from(["x", "--request-timeout", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(Config::try_parse_from(["x", "--request-timeout-ms", "1s"]).is_err());
        let config = Config::try_parse_from(["x", "--db-startup-timeout", "0"]).unwrap();
        assert_eq!(config.database.startup_timeout, Duration::ZERO);
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let config = Config::try_parse_from([
            "x",
            "--database-url",
            "postgres://app:hunter2@db/wallet",
            "--api-tokens",
            "token-xyz",
        ])
        .unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("token-xyz"), "{printed}");
        assert_eq!(
            config.database.url.expose_secret(),
            "postgres://app:hunter2@db/wallet"
        );
    }

    #[test]
    fn a_missing_explicit_config_file_is_an_error() {
        assert!(load_file(Some("/nonexistent/wallet.env".into())).is_err());
    }
}
