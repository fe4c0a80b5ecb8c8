//! The real `wallet-server` binary as a child process that a test can `kill -9` and start
//! again on the same port, so clients keep one URL across crashes.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long a start may take before the test gives up on it: a bound on a hang, not a
/// performance expectation (a debug build migrating on a loaded machine is slow).
const START_LIMIT: Duration = Duration::from_secs(60);

/// Starts that fail, e.g. because another process took the port while the service was down.
const START_ATTEMPTS: usize = 5;

pub struct Service {
    child: Child,
    addr: SocketAddr,
    args: Vec<String>,
    log: PathBuf,
}

impl Service {
    /// Starts the binary on `database_url` and waits until it is ready. Its output goes to
    /// `log`, appended across restarts. Nothing comes from the test's environment or from a
    /// `config.env`.
    pub async fn start(database_url: &str, request_timeout: Duration, log: &Path) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], super::free_port()));
        let args = [
            "--config",
            "/dev/null",
            "--database-url",
            database_url,
            "--http-addr",
            &addr.to_string(),
            // Metrics are not used here; port 0 keeps parallel tests from colliding.
            "--admin-addr",
            "127.0.0.1:0",
            // Two writers for three hot wallets: batches mix wallets on one connection.
            "--shards",
            "2",
            "--db-pool-size",
            "4",
            "--request-timeout-ms",
            &request_timeout.as_millis().to_string(),
            "--log",
            "info,sqlx=warn",
        ]
        .map(str::to_owned)
        .to_vec();
        let child = spawn_ready(&args, addr, log).await;
        Self {
            child,
            addr,
            args,
            log: log.to_owned(),
        }
    }

    /// `http://127.0.0.1:PORT`, the same across restarts.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `kill -9`: no shutdown, no draining; batches in flight die with the process.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL the service");
        self.child.wait().await.expect("reap the service");
    }

    /// Starts the binary again, with the same flags and port.
    pub async fn restart(&mut self) {
        self.child = spawn_ready(&self.args, self.addr, &self.log).await;
    }

    /// Whether the process is still the one started last (it neither crashed nor exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Spawns the service and waits until `/health/ready` answers 200, retrying a start that
/// exits (the port may be taken for a moment).
async fn spawn_ready(args: &[String], addr: SocketAddr, log: &Path) -> Child {
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let ready = format!("http://{addr}/health/ready");
    for _ in 0..START_ATTEMPTS {
        let output = File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the service log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_wallet-server"))
            .env_clear()
            .args(args)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("share the service log"))
            .stderr(output)
            .kill_on_drop(true)
            .spawn()
            .expect("the service binary starts");
        let started = Instant::now();
        while started.elapsed() < START_LIMIT {
            if child.try_wait().expect("poll the service").is_some() {
                break;
            }
            let response = probe.get(&ready).send().await;
            if response.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) {
                return child;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "the service did not become ready on {addr}; its log ({}):\n{}",
        log.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}
