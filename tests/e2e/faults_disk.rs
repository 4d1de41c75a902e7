//! SQLite store faults from outside doorward: another process holding the
//! database locked, and the disk filling up (a small tmpfs). A new login
//! needs a store write, so it gets a clear 503; sessions already in use go
//! on; nothing is corrupted; and doorward recovers by itself when the
//! condition clears.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::idp::Browser;
use crate::scenario::{Options, Scenario};
use crate::support::LogCapture;

/// doorward's SQLite busy timeout (src/store/sqlite.rs): how long a write
/// waits for another process's lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Another process (python's sqlite3) holding a write transaction open
/// (`BEGIN EXCLUSIVE`) on the store, as a backup or a person at the
/// sqlite3 prompt can. Released on drop, panics included.
struct LockHolder(Child);

impl LockHolder {
    fn take(db: &Path) -> Self {
        let script = "import sqlite3, sys\n\
                      c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)\n\
                      c.execute('BEGIN EXCLUSIVE')\n\
                      print('locked', flush=True)\n\
                      sys.stdin.read()\n\
                      c.execute('ROLLBACK')\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line.trim(), "locked", "the lock holder did not get its lock");
        Self(child)
    }

    /// Ends the transaction and waits for the process to exit.
    fn release(mut self) {
        drop(self.0.stdin.take());
        let status = self.0.wait().expect("wait for the lock holder");
        assert!(status.success(), "the lock holder failed: {status}");
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `PRAGMA integrity_check` by another SQLite (python's), after the fault.
fn assert_intact(db: &Path) {
    let output = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])",
        ])
        .arg(db)
        .output()
        .expect("run python3");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "ok",
        "integrity check: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn assert_logged(log: &LogCapture, parts: &[&str]) {
    let text = log.text();
    assert!(
        text.lines().any(|l| parts.iter().all(|p| l.contains(p))),
        "no log line with all of {parts:?}:\n{text}"
    );
}

/// A new login while the store cannot take a write: a 503 page that says
/// so, and no session cookie.
async fn login_fails_with_503(s: &Scenario, user: &str) -> Browser {
    let mut browser = Browser::default();
    let page = browser.login(&s.url(&format!("/private/{user}")), user, &s.idp).await;
    assert_eq!(page.status, 503, "{user}'s login: {}", page.body);
    assert!(
        page.body.contains("Service Unavailable") || page.body.contains("unavailable"),
        "{}",
        page.body
    );
    assert!(page.header("retry-after").is_some(), "{:?}", page.headers);
    assert!(
        !page.body.contains("database"),
        "no store internals on the page: {}",
        page.body
    );
    assert!(
        browser.cookie("doorward").is_none(),
        "no cookie without a stored session"
    );
    browser
}

#[tokio::test]
async fn a_store_locked_by_another_process_fails_logins_with_503_and_recovers_when_released() {
    let log = LogCapture::start("doorward=warn");
    let s = Scenario::start(Options::default()).await;
    let mut alice = s.logged_in("alice", "/").await;
    let db = s.store_path();

    let lock = LockHolder::take(&db);
    let started = Instant::now();
    let mut bob = login_fails_with_503(&s, "bob").await;
    assert!(
        started.elapsed() >= BUSY_TIMEOUT,
        "the write waited out the busy timeout ({:?})",
        started.elapsed()
    );
    assert_logged(&log, &["WARN", "session store is unavailable", "database is locked"]);
    // Alice goes on: her session needs no write.
    let page = alice.get(&s.url("/private/alice")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("alice@example.com"));

    lock.release();
    // No restart: the next login works.
    let page = bob.login(&s.url("/private/bob"), "bob", &s.idp).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("bob@example.com"));
    assert_intact(&db);
}

/// A tmpfs of `size` mounted on a fresh directory; unmounted on drop. The
/// test needs root (or CAP_SYS_ADMIN): without it, it fails, loudly,
/// rather than pass without testing anything.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("mount point");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            output.status.success(),
            "cannot mount a tmpfs for the disk-full test (it needs root or CAP_SYS_ADMIN; not skipped, \
             failed): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Self(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: doorward's pool may still hold the files open.
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Fills the file system at `dir` to the last byte; returns the filler.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 4096];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = file.sync_all();
    path
}

#[tokio::test]
async fn a_full_disk_fails_logins_with_503_keeps_sessions_and_recovers_when_space_is_freed() {
    let log = LogCapture::start("doorward=warn");
    let disk = Tmpfs::mount("4m");
    let db = disk.path().join("doorward.db");
    let s = Scenario::start(Options {
        store: Some(format!("url = \"sqlite://{}\"", db.display())),
        ..Options::default()
    })
    .await;
    let mut alice = s.logged_in("alice", "/").await;

    let filler = fill(disk.path());
    let mut bob = login_fails_with_503(&s, "bob").await;
    assert_logged(&log, &["WARN", "session store is unavailable", "full"]);
    let page = alice.get(&s.url("/private/alice")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("alice@example.com"));

    std::fs::remove_file(filler).expect("free the space");
    let page = bob.login(&s.url("/private/bob"), "bob", &s.idp).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("bob@example.com"));
    // Alice's session and the store are whole.
    let page = alice.get(&s.url("/private/alice-after")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_intact(&db);
}
