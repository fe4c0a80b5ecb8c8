//! A throwaway PostgreSQL cluster: its own data directory, port and socket directory. A fault
//! test starts one so it may crash it (`pg_ctl stop -m immediate`) without touching the
//! server every other test uses; the harness starts one for the whole test process when no
//! server is running (see [`super::database`]).
//!
//! The methods block (they wait for `pg_ctl`); that is fine on a test's main task, which the
//! multi-threaded runtime does not need for the spawned clients.

use sqlx::{Connection, PgConnection};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use uuid::Uuid;

/// Durable commits as in production (`fsync` on), and little memory: several clusters may run
/// at once on a small CI machine.
const SETTINGS: &str = "
listen_addresses = '127.0.0.1'
fsync = on
synchronous_commit = on
shared_buffers = 16MB
max_connections = 100
";

/// The OS user that runs PostgreSQL when the tests run as root (initdb refuses root).
const POSTGRES_USER: &str = "postgres";

/// Stops the cluster and deletes its directory once the test process has exited; see
/// [`PgCluster::start_for_process`]. Arguments: the directory, then the `pg_ctl` command line.
/// Terminal signals are ignored (also by `cat`, which inherits that), so a Ctrl-C that stops
/// the tests does not stop the cleanup.
const WATCHDOG: &str = r#"
trap '' HUP INT QUIT TERM
cat > /dev/null
dir=$1
shift
"$@" --mode=immediate stop > /dev/null 2>&1
rm -rf -- "$dir"
"#;

/// A cluster that is stopped and deleted when dropped, also when the test panics. After a
/// panic its directory (data, server log) is kept and its path printed.
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    /// For a cluster that lives as long as the process: the watchdog, never waited for (it
    /// outlives us), with the write end of its stdin.
    _watchdog: Option<Child>,
}

impl PgCluster {
    /// Creates a cluster in a new temporary directory and starts it on a free port.
    pub fn start() -> Self {
        Self::create("wallet-faults", false, "")
    }

    /// A Citus coordinator with `workers` workers, each a cluster of its own, their
    /// `postgres` databases made one Citus database (the extension must be installed).
    /// The coordinator comes first.
    pub async fn start_citus(workers: usize) -> Vec<Self> {
        // The maintenance daemon settles two-phase commits a crashed worker left prepared
        // every second, not every minute as by default: until then their rows stay locked.
        let settings = "shared_preload_libraries = 'citus'\ncitus.recover_2pc_interval = '1s'\n";
        let nodes: Vec<Self> = (0..=workers)
            .map(|_| Self::create("wallet-citus", false, settings))
            .collect();
        for node in &nodes {
            let mut conn = PgConnection::connect(&node.url("postgres")).await.unwrap();
            sqlx::query("CREATE EXTENSION citus")
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let mut coordinator = PgConnection::connect(&nodes[0].url("postgres"))
            .await
            .unwrap();
        sqlx::query("SELECT citus_set_coordinator_host('127.0.0.1', $1)")
            .bind(i32::from(nodes[0].port))
            .execute(&mut coordinator)
            .await
            .unwrap();
        for worker in &nodes[1..] {
            sqlx::query("SELECT citus_add_node('127.0.0.1', $1)")
                .bind(i32::from(worker.port))
                .execute(&mut coordinator)
                .await
                .unwrap();
        }
        nodes
    }

    /// A cluster for every test of this process, stopped and deleted when the process exits,
    /// however it exits.
    ///
    /// libtest never runs the destructors of statics, and a test process may also end by a
    /// signal or an abort, so no code of ours is sure to run at its end. What is sure: the
    /// kernel closes all its file descriptors. So a watchdog shell is started first, reading
    /// a pipe whose only write end this process holds (Rust opens every descriptor
    /// close-on-exec, so no child inherits it). When the process is gone, the watchdog reads
    /// end-of-file, stops the cluster at once and deletes its directory. Keep the value
    /// alive for the whole process (in a static): dropping it would stop the cluster.
    pub fn start_for_process() -> Self {
        Self::create("wallet-tests-pg", true, "")
    }

    fn create(prefix: &str, watched: bool, extra_settings: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", Uuid::new_v4().simple()));
        let (bin, port, as_postgres) = (bin_dir(), super::free_port(), running_as_root());
        std::fs::create_dir(&dir).expect("create the cluster's directory");
        // The guard exists as soon as the directory does, so a failing initdb cleans up too.
        let mut cluster = Self {
            dir,
            bin,
            port,
            as_postgres,
            _watchdog: None,
        };
        if watched {
            // Before anything else, so that even a failing start is cleaned up.
            cluster._watchdog = Some(cluster.watchdog());
        }
        if cluster.as_postgres {
            run(Command::new("chown").arg(POSTGRES_USER).arg(&cluster.dir));
        }
        // Not syncing initdb's files only skips work no crash here depends on: the tests
        // crash processes, never the machine. The server itself runs with fsync on.
        run(cluster
            .command("initdb")
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--pgdata",
            ])
            .arg(cluster.data()));
        let settings = format!(
            "{SETTINGS}{extra_settings}port = {}\nunix_socket_directories = '{}'\n",
            cluster.port,
            cluster.dir.display()
        );
        append(&cluster.data().join("postgresql.conf"), &settings);
        cluster.start_server();
        cluster
    }

    /// URL of the server, without a database name.
    pub fn server_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// URL of database `name` on this cluster, for the service and for checks behind it.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.server_url())
    }

    /// Starts the server again after [`Self::stop_immediate`]; it replays its WAL first.
    pub fn start_server(&self) {
        let log = self.dir.join("postgres.log");
        run(self.pg_ctl().arg("--log").arg(log).arg("start"));
    }

    /// The crash: every server process quits at once, no checkpoint, no goodbye to clients.
    pub fn stop_immediate(&self) {
        run(self.pg_ctl().args(["--mode=immediate", "stop"]));
    }

    /// Starts the watchdog of [`Self::start_for_process`].
    fn watchdog(&self) -> Child {
        let stop = self.pg_ctl();
        Command::new("sh")
            .args(["-c", WATCHDOG, "wallet-tests-pg-watchdog"])
            .arg(&self.dir)
            .arg(stop.get_program())
            .args(stop.get_args())
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the test's process group: a terminal's signals do not reach it.
            .process_group(0)
            .spawn()
            .expect("start the cluster's watchdog")
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `pg_ctl` on this cluster, waiting (bounded) for each start or stop to complete.
    fn pg_ctl(&self) -> Command {
        let mut command = self.command("pg_ctl");
        command.args(["--wait", "--timeout=60", "--pgdata"]);
        command.arg(self.data());
        command
    }

    /// One of PostgreSQL's programs, as the `postgres` user when we are root, run from the
    /// cluster's directory (which that user can enter).
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", POSTGRES_USER, "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.current_dir(&self.dir);
        command
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Fails harmlessly when the server is already stopped.
        let _ = self.pg_ctl().args(["--mode=immediate", "stop"]).output();
        if std::thread::panicking() {
            eprintln!(
                "test failed: cluster and server log kept in {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// PostgreSQL's programs: `$PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin`
/// (Debian and Ubuntu), else whatever `PATH` finds.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return dir.into();
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max();
    newest.map(|(_, bin)| bin).unwrap_or_default()
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective user).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .unwrap_or_else(|error| panic!("append to {}: {error}", path.display()));
}

/// Runs `command` to completion; panics with its output when it fails.
fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error} (set PG_BIN?)"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
