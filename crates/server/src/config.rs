//! Configuration: `config.env` (or `--config PATH`), then the environment, then flags; each
//! later source overrides the earlier ones.

use crate::ledger::LedgerConfig;
use crate::telemetry::LogFormat;
use clap::Parser;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The file read when `--config` is not given. Missing is fine; everything has a default.
const DEFAULT_CONFIG_FILE: &str = "config.env";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "wallet-server",
    version,
    about = "Wallet HTTP API over PostgreSQL",
    // A flag given twice takes its last value, so a wrapper's defaults can be overridden.
    args_override_self = true
)]
pub struct Config {
    /// KEY=VALUE file read before the environment [default: ./config.env when present]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// PostgreSQL URL; the database is created if missing
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/wallet",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Address the HTTP API listens on (host:port; port 0 picks a free one)
    #[arg(long, env = "WALLET_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: String,

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

    /// Connections in the pool that serves reads and wallet creation
    #[arg(long, env = "WALLET_DB_POOL_SIZE", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool_size: u32,

    /// Writer tasks, each with its own connection; wallets are spread over them by id
    #[arg(long, env = "WALLET_SHARDS", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub shards: u16,

    /// Most operations per transaction; 1 means one transaction per request
    #[arg(long, env = "WALLET_MAX_BATCH", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_batch: u32,

    /// Requests queued per writer before new ones wait for room
    #[arg(long, env = "WALLET_QUEUE_CAPACITY", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub queue_capacity: u32,

    /// Longest a request waits for the database, retries included, before a 503 (ms)
    #[arg(long, env = "WALLET_REQUEST_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub request_timeout_ms: u64,

    /// Longest a shutdown (SIGTERM, SIGINT) waits for requests and batches in flight (ms)
    #[arg(long, env = "WALLET_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub shutdown_timeout_ms: u64,

    /// Bearer tokens that may call `/api/`, comma-separated; each either the token itself or
    /// `sha256:<hex digest>` so the configuration holds no secret. Empty: no authentication
    #[arg(
        long,
        env = "WALLET_API_TOKENS",
        default_value = "",
        hide_env_values = true
    )]
    pub api_tokens: String,

    /// Largest request body (bytes); larger gets 413
    #[arg(long, env = "WALLET_MAX_BODY_BYTES", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u64).range(64..=16 * 1024 * 1024))]
    pub max_body_bytes: u64,

    /// Longest a client may take to send a request's headers (ms); the connection is closed
    #[arg(long, env = "WALLET_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub header_read_timeout_ms: u64,

    /// Open client connections at most; one more is answered 503 and closed
    #[arg(long, env = "WALLET_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Largest history page (`limit`)
    #[arg(long, env = "WALLET_MAX_PAGE_SIZE", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_page_size: u32,

    /// Longest one SQL statement may run before PostgreSQL cancels it (ms)
    #[arg(long, env = "WALLET_DB_STATEMENT_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub db_statement_timeout_ms: u64,

    /// Longest a read waits for a free pool connection before a 503 (ms)
    #[arg(long, env = "WALLET_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub db_acquire_timeout_ms: u64,
}

impl Config {
    /// Reads the configuration file, then parses the environment and `args` over it.
    pub fn load(args: Vec<OsString>) -> Result<Self, clap::Error> {
        load_file(config_path(&args))?;
        Self::try_parse_from(args)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn db_statement_timeout(&self) -> Duration {
        Duration::from_millis(self.db_statement_timeout_ms)
    }

    pub fn db_acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.db_acquire_timeout_ms)
    }

    pub fn ledger(&self) -> LedgerConfig {
        LedgerConfig {
            shards: usize::from(self.shards),
            max_batch: self.max_batch as usize,
            queue_capacity: self.queue_capacity as usize,
            request_timeout: self.request_timeout(),
        }
    }
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
        assert_eq!(config.ledger().max_batch, 1);
        assert!(Config::try_parse_from(["x", "--log-format", "xml"]).is_err());
        let config = Config::try_parse_from(["x", "--shards", "2", "--shards", "3"]).unwrap();
        assert_eq!(config.shards, 3);
        let config = Config::try_parse_from(["x", "--log-format", "json"]).unwrap();
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn a_missing_explicit_config_file_is_an_error() {
        assert!(load_file(Some("/nonexistent/wallet.env".into())).is_err());
    }
}
