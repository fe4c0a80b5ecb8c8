//! The real `wallet-server` binary as a child process: what only a process shows (signals,
//! exit status, logs, `kill -9` and a restart on the same port).

use super::app::TestApp;
use super::database::TestDatabase;
use serde_json::Value;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a start may take before the test gives up on it: a bound on a hang, not a
/// performance expectation (a debug build migrating on a loaded machine is slow).
const START_LIMIT: Duration = Duration::from_secs(60);

/// Starts that fail, e.g. because another process took a fixed port while the service was
/// down.
const START_ATTEMPTS: usize = 5;

/// How long a test waits for the process to exit: a guard against a hang, not a timing
/// assertion (a shutdown takes well under this).
const EXIT_LIMIT: Duration = Duration::from_secs(120);

/// The binary, logging JSON, with everything it wrote kept for the test to read. Killed when
/// dropped, in case a test fails before it exits; its database (when it owns one) is dropped
/// after it.
pub struct ServerProcess {
    child: Child,
    database_url: String,
    args: Vec<String>,
    /// Every line every run wrote, stdout and stderr.
    output: Arc<Mutex<Vec<String>>>,
    /// Where the output of the current run starts.
    run_starts_at: usize,
    readers: Vec<JoinHandle<()>>,
    /// The API's and the admin's address, once the current run said where it listens.
    addrs: Option<(SocketAddr, SocketAddr)>,
    database: Option<Arc<TestDatabase>>,
}

impl ServerProcess {
    /// Starts the binary on a new database with extra `flags` and waits until it listens.
    pub async fn start(flags: &[&str]) -> Self {
        let database = TestDatabase::fresh();
        let mut process = Self::spawn(&database.url(), flags);
        process.database = Some(Arc::new(database));
        process.listening().await;
        process
    }

    /// Starts the binary on `database_url`, which someone else owns, and waits until it
    /// listens.
    pub async fn start_on(database_url: &str, flags: &[&str]) -> Self {
        let mut process = Self::spawn(database_url, flags);
        process.listening().await;
        process
    }

    /// Runs the binary on a new database without waiting for anything, e.g. to see it fail.
    pub fn spawn_on_new_database(flags: &[&str]) -> Self {
        let database = TestDatabase::fresh();
        let mut process = Self::spawn(&database.url(), flags);
        process.database = Some(Arc::new(database));
        process
    }

    /// Runs the binary on `database_url`, on free ports, with JSON logs; `flags` override
    /// any of that. Nothing comes from the test's environment or a `config.env`.
    pub fn spawn(database_url: &str, flags: &[&str]) -> Self {
        let args: Vec<String> = ["--config", "/dev/null"]
            .iter()
            .chain(flags)
            .map(|arg| arg.to_string())
            .collect();
        let output = Arc::new(Mutex::new(Vec::new()));
        let (child, readers) = run(database_url, &args, &output);
        Self {
            child,
            database_url: database_url.to_owned(),
            args,
            output,
            run_starts_at: 0,
            readers,
            addrs: None,
            database: None,
        }
    }

    /// The API's address; the process must be listening.
    pub fn addr(&self) -> SocketAddr {
        self.addrs.expect("the server is listening").0
    }

    /// The admin listener's address; the process must be listening.
    pub fn admin_addr(&self) -> SocketAddr {
        self.addrs.expect("the server is listening").1
    }

    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// A client of this server, with the harness's helpers. It keeps the database alive.
    pub fn app(&self) -> TestApp {
        TestApp::new(
            self.addr(),
            self.admin_addr(),
            &self.database_url,
            self.database.clone(),
        )
    }

    /// Waits for the current run's `listening` log line and returns the API's and the
    /// admin's address. A run that exits first (e.g. its fixed port was taken) is started
    /// again, a few times.
    pub async fn listening(&mut self) -> (SocketAddr, SocketAddr) {
        for _ in 0..START_ATTEMPTS {
            let started = Instant::now();
            while started.elapsed() < START_LIMIT {
                if let Some(addrs) = self.listening_line() {
                    self.addrs = Some(addrs);
                    return addrs;
                }
                if self.child.try_wait().expect("poll the server").is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            self.kill().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            self.respawn();
        }
        panic!(
            "the server did not start in {START_ATTEMPTS} attempts: {:#?}",
            self.output()
        );
    }

    fn listening_line(&self) -> Option<(SocketAddr, SocketAddr)> {
        let output = self.output.lock().unwrap();
        output[self.run_starts_at..].iter().find_map(|line| {
            let addr = |field| listening_field(line, field)?.parse().ok();
            Some((addr("http")?, addr("admin")?))
        })
    }

    /// Sends `signal` (`TERM`, `INT`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the process is running");
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// `kill -9`: no shutdown, no draining; batches in flight die with the process.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        self.child.wait().await.expect("reap the server");
    }

    /// Starts the binary again with the same flags, and waits until it listens. Give it a
    /// fixed `--http-addr` to keep the clients' URL across restarts.
    pub async fn restart(&mut self) {
        self.respawn();
        self.listening().await;
    }

    fn respawn(&mut self) {
        self.run_starts_at = self.output.lock().unwrap().len();
        self.addrs = None;
        let (child, readers) = run(&self.database_url, &self.args, &self.output);
        self.child = child;
        self.readers.extend(readers);
    }

    /// Whether the process is still the one started last (it neither crashed nor exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit and for all its output.
    pub async fn exit_status(&mut self) -> ExitStatus {
        let status = tokio::time::timeout(EXIT_LIMIT, self.child.wait())
            .await
            .expect("the server exits")
            .unwrap();
        for reader in self.readers.drain(..) {
            reader.await.unwrap();
        }
        status
    }

    /// Every line the process wrote so far, over all its runs.
    pub fn output(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Before the database goes: a server that outlived its test would log its loss.
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            let output = self.output.lock().unwrap();
            let tail = &output[output.len().saturating_sub(50)..];
            eprintln!("the server's last output lines:\n{}", tail.join("\n"));
        }
    }
}

/// Spawns one run of the binary and the tasks that collect its output into `output`.
fn run(
    database_url: &str,
    args: &[String],
    output: &Arc<Mutex<Vec<String>>>,
) -> (Child, Vec<JoinHandle<()>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wallet-server"))
        .env_clear()
        .envs([
            ("DATABASE_URL", database_url),
            ("WALLET_HTTP_ADDR", "127.0.0.1:0"),
            ("WALLET_ADMIN_ADDR", "127.0.0.1:0"),
            ("WALLET_LOG_FORMAT", "json"),
            ("RUST_LOG", "info"),
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the server binary starts");
    let readers = vec![
        collect_lines(child.stdout.take().unwrap(), output.clone()),
        collect_lines(child.stderr.take().unwrap(), output.clone()),
    ];
    (child, readers)
}

/// A field of the `listening` log line, in either log format.
fn listening_field(line: &str, field: &str) -> Option<String> {
    if let Ok(event) = serde_json::from_str::<Value>(line) {
        return (event["message"] == "listening")
            .then(|| event[field].as_str().map(str::to_owned))
            .flatten();
    }
    let prefix = format!("{field}=");
    line.contains(" listening ")
        .then(|| {
            line.split_whitespace()
                .find_map(|token| token.strip_prefix(&prefix).map(str::to_owned))
        })
        .flatten()
}

fn collect_lines(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            lines.lock().unwrap().push(line);
        }
    })
}
