//! A real PostgreSQL server for tests, started on 127.0.0.1 on a free port,
//! with its data directory in a temporary directory.
//!
//! Include it in a test crate with
//!
//! ```ignore
//! #[path = "../common/postgres.rs"]
//! mod postgres;
//! ```
//!
//! It needs Debian's PostgreSQL server binaries (`apt-get install -y
//! postgresql`, which puts `postgres` and `initdb` in
//! `/usr/lib/postgresql/<major>/bin`), `sh` and `setpriv` (util-linux, on
//! every Debian), and the dev-dependencies std, tokio, tempfile and sqlx
//! (`postgres` feature). Linux only.
//!
//! ```ignore
//! // One server per test binary, shared by its tests; each test gets its own database.
//! let pg = postgres::TestPostgres::shared();
//! let url = pg.fresh_database().await; // postgres://doorward:...@127.0.0.1:PORT/t_..
//!
//! // A server of its own, for a test that stops, kills or restarts it.
//! let pg = postgres::TestPostgres::start();
//! let url = pg.fresh_database().await;
//! pg.stop().await;      // fast shutdown: clients see their connections closed
//! pg.restart().await;   // same port, same data: the rows are still there
//! pg.kill9().await;     // SIGKILL the postmaster (crash); restart() runs crash recovery
//! pg.restart().await;
//! pg.terminate_backends(postgres::Backends::QueryLike("LISTEN%")).await; // drop LISTEN connections
//! ```
//!
//! How it works, and why:
//! - `initdb` and `postgres` refuse to run as root. As root (CI) both run as
//!   the `postgres` user (created by Debian's package; `nobody` if it is
//!   missing; `DOORWARD_PG_USER` overrides) through `setpriv`, and the
//!   temporary directory is chowned to that user. As a normal user they run
//!   as that user.
//! - Speed: `initdb` (about 1 s) runs once per machine and PostgreSQL
//!   version; its output is kept as a template under the test target's
//!   `target/tmp` (`CARGO_TARGET_TMPDIR`) and copied for each server (about
//!   60 ms on tmpfs). Data directories go to `/dev/shm` (tmpfs) when it is
//!   open to all and at least 1 GiB, else the system temp dir.
//!   `fsync` and `full_page_writes` are off: safe for throwaway data, and a
//!   `kill9()` test still recovers every committed row, because crash
//!   recovery needs fsync only when the OS itself crashes. `synchronous_commit`
//!   stays on: off, a commit acknowledged just before `kill9()` could be lost
//!   (its WAL still in PostgreSQL's buffers), which would make such tests flaky.
//! - No leftovers: `postgres` runs in the foreground under a tiny `sh`
//!   wrapper (embedded below) whose stdin is a pipe this process holds. The
//!   wrapper forwards each line it reads as a signal to the server; at EOF,
//!   which is also what happens when this test process exits or is
//!   SIGKILLed, it stops the server with SIGQUIT (immediate shutdown, which
//!   also ends every backend) and removes the temporary directory. The
//!   server also gets SIGKILL should the wrapper itself die
//!   (`setpriv --pdeathsig KILL`). A `static` shared server is therefore
//!   stopped when the test binary exits, although statics are never dropped.
//! - Password authentication (scram-sha-256) on TCP, so the URLs carry a
//!   password, which has characters that must be percent-encoded. The Unix
//!   socket (in the temporary directory, `trust`) is for psql while
//!   debugging: `psql -h <dir> -p <port> -U doorward postgres`.
//! - The server log is `<dir>/postgres.log` ([`TestPostgres::log`]); a server
//!   that fails to start panics with its tail.
//!
//! Environment (all optional): `DOORWARD_PG_BINDIR` (directory with
//! `postgres` and `initdb`), `DOORWARD_PG_USER` (who runs them when we are
//! root), `DOORWARD_PG_TMPDIR` (where data directories go),
//! `DOORWARD_PG_TEMPLATE_CACHE` (where the template is kept),
//! `DOORWARD_PG_REBUILD_TEMPLATE=1` (make the template anew).
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::Connection;

/// The superuser every server has; tests connect as this user.
pub const USER: &str = "doorward";
/// Its password. It needs percent-encoding in a URL (`/` and `@`), which
/// [`TestPostgres::url`] does.
pub const PASSWORD: &str = "pg-test/p@ss";
/// What the server stores for [`PASSWORD`]: a SCRAM-SHA-256 secret with 16
/// iterations instead of PostgreSQL's 4096, made with Python's hashlib
/// (pbkdf2_hmac, salt `doorward-test-salt`). Clients do the iterations the
/// server asks for, and sqlx's PBKDF2 unoptimised (a test build) takes
/// about 65 ms per connection at 4096. Still real scram-sha-256.
const PASSWORD_SCRAM_SECRET: &str = "SCRAM-SHA-256$16:ZG9vcndhcmQtdGVzdC1zYWx0$\
    6bGbomnpieUSw1pg+S5CmuBWLeYEEiBQLvU01IuzG4k=:pn7L6mUqY/o8j/2vjINbUMP5nUCQlj+qnpBYuCNj9uY=";
/// Part of the template cache key: bump it when the initdb arguments or the
/// password change.
const TEMPLATE_VERSION: &str = "v2";

/// Settings for speed and for a test machine; `-c name=value` on the
/// server's command line. More (or overrides) via [`TestPostgres::start_with`].
const SETTINGS: &[(&str, &str)] = &[
    ("listen_addresses", "127.0.0.1"),
    ("fsync", "off"),
    ("full_page_writes", "off"),
    ("shared_buffers", "32MB"),
    ("max_connections", "200"),
    ("max_wal_size", "1GB"),
    ("jit", "off"),
    ("timezone", "UTC"),
    ("log_timezone", "UTC"),
    ("logging_collector", "off"),
    ("log_min_messages", "warning"),
    ("log_line_prefix", "%m [%p] %q%a "),
];

/// The wrapper every server (and initdb) runs under. `$1`: a directory to
/// remove at EOF ("" for none); the rest: the command. It prints the
/// command's pid, forwards each line read from stdin as a signal name to
/// it, and at EOF on stdin sends SIGQUIT, waits, and removes the directory.
/// It exits with the command's status.
const WRAPPER: &str = r#"
set -u
cleanup=$1; shift
exec 3<&0 </dev/null
"$@" 3<&- &
child=$!
echo "$child"
(
  while read -r sig <&3; do kill -s "$sig" "$child" 2>/dev/null; done
  kill -s QUIT "$child" 2>/dev/null
  exit 99
) &
watcher=$!
exec 3<&-
wait "$child"; status=$?
kill "$watcher" 2>/dev/null
wait "$watcher"; watched=$?
if [ "$watched" = 99 ] && [ -n "$cleanup" ]; then rm -rf -- "$cleanup"; fi
exit "$status"
"#;

/// Which backends [`TestPostgres::terminate_backends`] ends.
#[derive(Debug, Clone, Copy)]
pub enum Backends<'a> {
    /// `application_name` equals this.
    ApplicationName(&'a str),
    /// The backend's current or last statement matches this SQL `LIKE`
    /// pattern, e.g. `LISTEN%` for sqlx's `PgListener`.
    QueryLike(&'a str),
    /// Every connection to this database.
    Database(&'a str),
}

/// Extra settings for [`TestPostgres::start_with`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-c name=value` settings, after (so overriding) the defaults.
    pub settings: Vec<(String, String)>,
    /// PEM certificate chain and private key: turns on `ssl`. The files are
    /// written into the data directory, owned by the server's user.
    pub tls: Option<(String, String)>,
}

/// A running (or stopped) PostgreSQL server. Dropping it stops the server
/// and removes its data.
pub struct TestPostgres {
    port: AtomicU16,
    dir: tempfile::TempDir,
    bindir: PathBuf,
    run_as: Option<RunAs>,
    options: Options,
    state: Mutex<State>,
}

struct State {
    /// The wrapper, and the pipe to its stdin, while the server runs.
    running: Option<Running>,
}

struct Running {
    wrapper: Child,
    stdin: ChildStdin,
    pid: u32,
    /// Where this run's lines start in the log.
    log_start: usize,
}

#[derive(Clone, Debug)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestPostgres {
    /// Starts a new server; panics with the reason (and the server log) if
    /// it cannot. Blocks for about 0.1 s (1 s more the first time on a
    /// machine, for initdb).
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    /// [`start`](Self::start) with extra settings or TLS.
    pub fn start_with(options: Options) -> Self {
        let bindir = bindir().clone();
        let run_as = run_as().clone();
        let template = template(&bindir, run_as.as_ref());
        let dir = tempfile::Builder::new()
            .prefix("doorward-pg-")
            .tempdir_in(scratch_base())
            .unwrap_or_else(|e| panic!("create a temporary directory for PostgreSQL: {e}"));
        let data = dir.path().join("data");
        copy_tree(template, &data).unwrap_or_else(|e| panic!("copy the template data directory: {e}"));
        if let Some((cert, key)) = &options.tls {
            fs::write(data.join("server.crt"), cert).expect("write server.crt");
            fs::write(data.join("server.key"), key).expect("write server.key");
            fs::set_permissions(data.join("server.key"), fs::Permissions::from_mode(0o600)).expect("chmod key");
        }
        if let Some(user) = &run_as {
            chown_tree(dir.path(), user.uid, user.gid).expect("chown the data directory to the server's user");
        }
        let pg = Self {
            port: AtomicU16::new(0),
            dir,
            bindir,
            run_as,
            options,
            state: Mutex::new(State { running: None }),
        };
        let mut last_error = String::new();
        for _ in 0..5 {
            pg.port.store(free_port(), Ordering::Relaxed);
            let deadline = Instant::now() + Duration::from_secs(30);
            match block_on_sleepless(pg.spawn_and_wait(deadline, Waiter::Thread)) {
                Ok(()) => return pg,
                Err(StartError::PortTaken(log)) => last_error = log,
                Err(StartError::Failed(log)) => panic!("PostgreSQL did not start:\n{log}"),
            }
        }
        panic!("PostgreSQL could not bind a free port five times:\n{last_error}");
    }

    /// One server for the whole test binary, started on first use. It is
    /// stopped (and its data removed) when the test binary exits. Do not
    /// stop or restart it: tests that do start their own.
    pub fn shared() -> &'static TestPostgres {
        static SHARED: OnceLock<TestPostgres> = OnceLock::new();
        SHARED.get_or_init(TestPostgres::start)
    }

    pub fn port(&self) -> u16 {
        self.port.load(Ordering::Relaxed)
    }

    /// The temporary directory: `data/`, `postgres.log`, the Unix socket.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `postgres://doorward:<percent-encoded password>@127.0.0.1:PORT/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{db}",
            encode_userinfo(PASSWORD),
            self.port()
        )
    }

    /// The same without the password, for tests that pass it separately.
    pub fn url_without_password(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port())
    }

    /// Connect options for `db` (TLS off unless the server has TLS, then
    /// `prefer`).
    pub fn connect_options(&self, db: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port())
            .username(USER)
            .password(PASSWORD)
            .database(db)
            .ssl_mode(if self.options.tls.is_some() {
                PgSslMode::Prefer
            } else {
                PgSslMode::Disable
            })
    }

    /// Everything the server logged so far (all its runs).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// Whether the server process is running (as far as this harness knows).
    pub fn is_running(&self) -> bool {
        let mut state = self.lock();
        match &mut state.running {
            Some(r) => matches!(r.wrapper.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Creates database `name` (letters, digits and `_` only).
    pub async fn create_database(&self, name: &str) {
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "database name {name:?}: use letters, digits and _"
        );
        let mut admin = self.admin().await;
        sqlx::query(&format!("CREATE DATABASE \"{name}\" STRATEGY = FILE_COPY"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
    }

    /// Creates a database no other test uses, and returns its URL.
    pub async fn fresh_database(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = format!("t_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        self.create_database(&name).await;
        self.url(&name)
    }

    /// Drops database `name`, disconnecting its clients first.
    pub async fn drop_database(&self, name: &str) {
        let mut admin = self.admin().await;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            name.replace('"', "\"\"")
        ))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("DROP DATABASE {name}: {e}"));
        let _ = admin.close().await;
    }

    /// Ends the matching backends (`pg_terminate_backend`, waiting up to 5 s
    /// for each to exit), never the admin connection doing it; returns how
    /// many were ended. Their clients see the connection closed, with
    /// `FATAL: terminating connection due to administrator command` (57P01).
    pub async fn terminate_backends(&self, which: Backends<'_>) -> u64 {
        let (condition, value) = match which {
            Backends::ApplicationName(v) => ("application_name = $1", v),
            Backends::QueryLike(v) => ("query LIKE $1", v),
            Backends::Database(v) => ("datname = $1", v),
        };
        let sql = format!(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity \
             WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND {condition}"
        );
        let mut admin = self.admin().await;
        let (n,): (i64,) = sqlx::query_as(&sql)
            .bind(value)
            .fetch_one(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("terminate backends ({which:?}): {e}"));
        let _ = admin.close().await;
        n as u64
    }

    /// Fast shutdown (SIGINT: clients are disconnected, a checkpoint is
    /// written); the data and the port stay for [`restart`](Self::restart).
    pub async fn stop(&self) {
        self.stop_with("INT", Waiter::Tokio).await
    }

    /// SIGKILL to the postmaster, as in a crash. Its backends notice and
    /// exit by themselves within moments; [`restart`](Self::restart) runs
    /// crash recovery.
    pub async fn kill9(&self) {
        self.stop_with("KILL", Waiter::Tokio).await
    }

    /// Starts the server again on the same port and data directory (after a
    /// fast shutdown if it is still running).
    pub async fn restart(&self) {
        if self.is_running() {
            self.stop().await;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.spawn_and_wait(deadline, Waiter::Tokio).await {
                Ok(()) => return,
                // After kill9 the old backends may hold the port or the
                // shared memory a moment longer.
                Err(StartError::PortTaken(log)) | Err(StartError::Failed(log))
                    if Instant::now() < deadline && retryable(&log) =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(StartError::PortTaken(log)) | Err(StartError::Failed(log)) => {
                    panic!("PostgreSQL did not restart on port {}:\n{log}", self.port())
                }
            }
        }
    }

    /// [`stop`](Self::stop) for code outside a runtime.
    pub fn stop_blocking(&self) {
        block_on_sleepless(self.stop_with("INT", Waiter::Thread))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn admin(&self) -> PgConnection {
        let options = self.connect_options("postgres").application_name("doorward-test-admin");
        PgConnection::connect_with(&options)
            .await
            .unwrap_or_else(|e| panic!("connect to the test PostgreSQL on port {}: {e}", self.port()))
    }

    /// Sends `signal` to the server and waits until it has exited.
    async fn stop_with(&self, signal: &str, waiter: Waiter) {
        let running = self.lock().running.take();
        let Some(mut running) = running else { return };
        let escalation = [(signal, 10u64), ("QUIT", 5), ("KILL", 5)];
        for (sig, seconds) in escalation {
            let _ = writeln!(running.stdin, "{sig}");
            let _ = running.stdin.flush();
            let until = Instant::now() + Duration::from_secs(seconds);
            while Instant::now() < until {
                if let Ok(Some(_)) = running.wrapper.try_wait() {
                    return;
                }
                waiter.sleep(Duration::from_millis(5)).await;
            }
        }
        // The wrapper itself is stuck: end it (the server has pdeathsig KILL).
        let _ = running.wrapper.kill();
        let _ = running.wrapper.wait();
    }

    fn spawn(&self) -> Result<(), StartError> {
        let data = self.dir.path().join("data");
        let log_start = self.log().len();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| StartError::Failed(format!("open the log: {e}")))?;
        if let Some(user) = &self.run_as {
            let _ = std::os::unix::fs::lchown(self.log_path(), Some(user.uid), Some(user.gid));
        }
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WRAPPER)
            .arg("doorward-test-postgres")
            .arg(self.dir.path());
        push_setpriv(&mut command, self.run_as.as_ref());
        command
            .arg(self.bindir.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(self.port().to_string())
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.path().display()));
        for (name, value) in SETTINGS {
            command.arg("-c").arg(format!("{name}={value}"));
        }
        if self.options.tls.is_some() {
            command.args([
                "-c",
                "ssl=on",
                "-c",
                "ssl_cert_file=server.crt",
                "-c",
                "ssl_key_file=server.key",
            ]);
        }
        for (name, value) in &self.options.settings {
            command.arg("-c").arg(format!("{name}={value}"));
        }
        let stderr = log.try_clone().map_err(|e| StartError::Failed(e.to_string()))?;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .env_remove("PGDATA")
            .env("LC_ALL", "C")
            // Not in the test's process group: a terminal's Ctrl-C reaches
            // only the test, whose exit then stops the server cleanly.
            .process_group(0);
        let mut wrapper = command
            .spawn()
            .map_err(|e| StartError::Failed(format!("spawn sh: {e}")))?;
        let stdin = wrapper.stdin.take().expect("piped stdin");
        let pid = read_pid(&mut wrapper).map_err(|e| StartError::Failed(format!("{e}\n{}", self.log())))?;
        self.lock().running = Some(Running {
            wrapper,
            stdin,
            pid,
            log_start,
        });
        Ok(())
    }

    /// Ready: `postmaster.pid` is ours and says "ready" (what `pg_ctl -w`
    /// checks). Err if the server exited.
    fn check_ready(&self) -> Result<bool, StartError> {
        let mut state = self.lock();
        let running = state.running.as_mut().expect("spawned");
        if let Ok(Some(status)) = running.wrapper.try_wait() {
            let log_start = running.log_start;
            state.running = None;
            drop(state);
            let log = self.log();
            let log = format!("{}\n(exit: {status})", tail(log.get(log_start..).unwrap_or(&log), 40));
            return Err(
                if log.contains("could not bind") || log.contains("could not create any TCP/IP sockets") {
                    StartError::PortTaken(log)
                } else {
                    StartError::Failed(log)
                },
            );
        }
        let pidfile = fs::read_to_string(self.dir.path().join("data/postmaster.pid")).unwrap_or_default();
        let lines: Vec<&str> = pidfile.lines().collect();
        Ok(lines.first().map(|l| l.trim()) == Some(&running.pid.to_string()[..])
            && lines.get(7).map(|l| l.trim()) == Some("ready"))
    }

    async fn spawn_and_wait(&self, deadline: Instant, waiter: Waiter) -> Result<(), StartError> {
        self.spawn()?;
        loop {
            if self.check_ready()? {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop_with("QUIT", waiter).await;
                return Err(StartError::Failed(format!(
                    "not ready in time\n{}",
                    tail(&self.log(), 40)
                )));
            }
            waiter.sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // Immediate shutdown: nothing of the data is needed any more.
        block_on_sleepless(self.stop_with("QUIT", Waiter::Thread));
    }
}

#[derive(Debug)]
enum StartError {
    PortTaken(String),
    Failed(String),
}

fn retryable(log: &str) -> bool {
    [
        "could not bind",
        "could not create any TCP/IP sockets",
        "pre-existing shared memory block",
        "lock file",
    ]
    .iter()
    .any(|m| log.contains(m))
}

/// How to wait between polls: in a tokio runtime, or by blocking the thread
/// (start, Drop, and code outside a runtime).
#[derive(Clone, Copy)]
enum Waiter {
    Tokio,
    Thread,
}

impl Waiter {
    async fn sleep(self, d: Duration) {
        match self {
            Waiter::Tokio => tokio::time::sleep(d).await,
            Waiter::Thread => std::thread::sleep(d),
        }
    }
}

/// Runs a future that never returns Pending (one whose only awaits are
/// `Waiter::Thread` sleeps) to completion without a runtime.
fn block_on_sleepless<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("a blocking wait returned Pending"),
    }
}

fn read_pid(wrapper: &mut Child) -> Result<u32, String> {
    let stdout = wrapper.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("read the server's pid: {e}"))?;
    u32::from_str(line.trim()).map_err(|_| format!("the wrapper printed {line:?} instead of a pid"))
}

fn push_setpriv(command: &mut Command, run_as: Option<&RunAs>) {
    if let Some(user) = run_as {
        command
            .arg("setpriv")
            .arg(format!("--reuid={}", user.uid))
            .arg(format!("--regid={}", user.gid))
            .arg("--init-groups")
            .arg("--pdeathsig=KILL")
            .arg("--");
    } else if Path::new("/usr/bin/setpriv").exists() {
        command.args(["/usr/bin/setpriv", "--pdeathsig=KILL", "--"]);
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn encode_userinfo(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// The directory with `postgres` and `initdb`: `DOORWARD_PG_BINDIR`, else
/// Debian's newest `/usr/lib/postgresql/<major>/bin`, else `PATH`.
fn bindir() -> &'static PathBuf {
    static BINDIR: OnceLock<PathBuf> = OnceLock::new();
    BINDIR.get_or_init(|| {
        let has_both = |dir: &Path| dir.join("postgres").is_file() && dir.join("initdb").is_file();
        if let Some(dir) = std::env::var_os("DOORWARD_PG_BINDIR") {
            let dir = PathBuf::from(dir);
            assert!(
                has_both(&dir),
                "DOORWARD_PG_BINDIR={} has no postgres and initdb",
                dir.display()
            );
            return dir;
        }
        let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                has_both(&bin).then_some((major, bin))
            })
            .collect();
        debian.sort();
        if let Some((_, dir)) = debian.pop() {
            return dir;
        }
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .find(|dir| has_both(dir))
            .unwrap_or_else(|| {
                panic!(
                    "PostgreSQL server binaries (postgres, initdb) not found in /usr/lib/postgresql/*/bin \
                     or on PATH: install Debian's package `postgresql` (apt-get install -y postgresql), \
                     or set DOORWARD_PG_BINDIR"
                )
            })
    })
}

/// The user the server runs as when we are root; None when we are not.
fn run_as() -> &'static Option<RunAs> {
    static RUN_AS: OnceLock<Option<RunAs>> = OnceLock::new();
    RUN_AS.get_or_init(|| {
        let euid = fs::metadata("/proc/self").map(|m| m.uid()).expect("read /proc/self (Linux only)");
        if euid != 0 {
            return None;
        }
        let candidates = match std::env::var("DOORWARD_PG_USER") {
            Ok(user) => vec![user],
            Err(_) => vec!["postgres".to_string(), "nobody".to_string()],
        };
        for name in candidates {
            let id = |flag: &str| -> Option<u32> {
                let out = Command::new("id").arg(flag).arg(&name).stderr(Stdio::null()).output().ok()?;
                if !out.status.success() {
                    return None;
                }
                String::from_utf8(out.stdout).ok()?.trim().parse().ok()
            };
            if let (Some(uid), Some(gid)) = (id("-u"), id("-g")) {
                if uid != 0 {
                    return Some(RunAs { name, uid, gid });
                }
            }
        }
        panic!("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as (set DOORWARD_PG_USER)")
    })
}

/// Where data directories go: `DOORWARD_PG_TMPDIR`, else /dev/shm (tmpfs:
/// copying the template takes 60 ms instead of 200-400 ms on disk) when it
/// is open to all and not small (containers often get 64 MB; each server
/// takes about 30 MB), else the system temp dir. When root, the server's
/// user must be able to reach it.
fn scratch_base() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOORWARD_PG_TMPDIR") {
        return dir.into();
    }
    let shm = Path::new("/dev/shm");
    let sticky_and_open = fs::metadata(shm)
        .map(|m| m.is_dir() && m.mode() & 0o1777 == 0o1777)
        .unwrap_or(false);
    // tmpfs without size= gets half the memory; with it, insist on 1 GiB.
    let big_enough = fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .rfind(|line| line.split_whitespace().nth(1) == Some("/dev/shm"))
        .map(|line| {
            let options = line.split_whitespace().nth(3).unwrap_or("");
            match options.split(',').find_map(|o| o.strip_prefix("size=")) {
                None => true,
                Some(size) => tmpfs_size_bytes(size).is_some_and(|bytes| bytes >= 1 << 30),
            }
        })
        .unwrap_or(false);
    if sticky_and_open && big_enough {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// `65536k`, `2g`, `1073741824` as in /proc/mounts.
fn tmpfs_size_bytes(size: &str) -> Option<u64> {
    let (digits, unit) = size.split_at(size.find(|c: char| !c.is_ascii_digit()).unwrap_or(size.len()));
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return None,
    };
    Some(n << shift)
}

/// The initdb'd template data directory, made once per PostgreSQL version
/// and kept in `DOORWARD_PG_TEMPLATE_CACHE`, else `CARGO_TARGET_TMPDIR`
/// (`target/tmp`), else the system temp dir. `DOORWARD_PG_REBUILD_TEMPLATE=1`
/// makes it anew.
fn template(bindir: &Path, run_as: Option<&RunAs>) -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let version = Command::new(bindir.join("postgres"))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let key: String = format!("{TEMPLATE_VERSION}-{}", version.trim())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let cache_root = std::env::var_os("DOORWARD_PG_TEMPLATE_CACHE")
            .map(PathBuf::from)
            .or_else(|| option_env!("CARGO_TARGET_TMPDIR").map(PathBuf::from))
            .unwrap_or_else(std::env::temp_dir);
        let rebuild = std::env::var_os("DOORWARD_PG_REBUILD_TEMPLATE").is_some_and(|v| v != "0");
        let cached = cache_root.join(format!("doorward-pg-template-{key}"));
        if rebuild {
            let _ = fs::remove_dir_all(&cached);
        }
        if cached.join("PG_VERSION").is_file() {
            return cached;
        }
        // initdb into a scratch directory the server's user owns.
        let work = tempfile::Builder::new()
            .prefix("doorward-pg-initdb-")
            .tempdir_in(scratch_base())
            .expect("create a directory for initdb");
        let pwfile = work.path().join("pwfile");
        // initdb stores a secret in SCRAM format as it is.
        fs::write(&pwfile, PASSWORD_SCRAM_SECRET).expect("write pwfile");
        if let Some(user) = run_as {
            chown_tree(work.path(), user.uid, user.gid).expect("chown the initdb directory");
        }
        let data = work.path().join("data");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WRAPPER)
            .arg("doorward-test-initdb")
            .arg(work.path());
        push_setpriv(&mut command, run_as);
        command
            .arg(bindir.join("initdb"))
            .arg("-D")
            .arg(&data)
            .arg(format!("--username={USER}"))
            .arg(format!("--pwfile={}", pwfile.display()))
            .args([
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--encoding=UTF8",
                "--no-locale",
            ])
            .args(["--no-sync", "--no-instructions", "--wal-segsize=1"])
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().unwrap_or_else(|e| panic!("spawn sh for initdb: {e}"));
        let stdin = child.stdin.take();
        let output = child.wait_with_output().expect("wait for initdb");
        drop(stdin);
        assert!(
            output.status.success(),
            "initdb failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let _ = fs::remove_file(data.join("postmaster.opts"));
        // Publish atomically: copy next to the final name, then rename.
        fs::create_dir_all(&cache_root).expect("create the template cache directory");
        let staging = cache_root.join(format!(".doorward-pg-template-{}-{}", std::process::id(), key));
        let _ = fs::remove_dir_all(&staging);
        copy_tree(&data, &staging).expect("copy the template into the cache");
        if fs::rename(&staging, &cached).is_err() {
            // Another test process published it first.
            let _ = fs::remove_dir_all(&staging);
        }
        assert!(
            cached.join("PG_VERSION").is_file(),
            "template cache {} is incomplete",
            cached.display()
        );
        cached
    })
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir(to)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o700))?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}
