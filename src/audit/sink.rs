//! Where audit lines go: stderr, or a file appended to (created 0600: the
//! trail names users) and reopened on SIGHUP, so logrotate can move it
//! away and doorward carries on in a new file.
//!
//! A line is written with one `write_all` of the whole line under a mutex
//! and no buffer kept between lines: lines never interleave, none sits in
//! memory when the process dies, and on a file opened `O_APPEND` each line
//! lands whole even beside another writer. Write failures never panic and
//! never reach the request: the first is reported on stderr, the rest
//! counted ([`Sink::failures`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Where the sink writes.
pub enum Destination {
    Stderr,
    File(PathBuf),
    /// Any writer (tests capture the stream with this).
    Writer(Box<dyn Write + Send>),
}

/// The open destination.
enum Out {
    Stderr,
    File(File),
    Writer(Box<dyn Write + Send>),
}

/// The audit stream's writer, shared by the layer and the SIGHUP task.
pub struct Sink {
    path: Option<PathBuf>,
    out: Mutex<Out>,
    failures: AtomicU64,
}

impl Sink {
    /// Opens `destination` (a file is created when missing).
    pub fn open(destination: Destination) -> std::io::Result<Self> {
        let (path, out) = match destination {
            Destination::Stderr => (None, Out::Stderr),
            Destination::File(path) => {
                let file = open_append(&path)?;
                (Some(path), Out::File(file))
            }
            Destination::Writer(writer) => (None, Out::Writer(writer)),
        };
        Ok(Self {
            path,
            out: Mutex::new(out),
            failures: AtomicU64::new(0),
        })
    }

    /// Writes one line (`line` without its newline).
    pub fn write_line(&self, line: &[u8]) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
        // A writer that panicked mid-line poisoned the lock; the next line
        // is still worth writing.
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = match &mut *out {
            Out::Stderr => std::io::stderr().lock().write_all(&bytes),
            Out::File(file) => file.write_all(&bytes),
            Out::Writer(writer) => writer.write_all(&bytes).and_then(|()| writer.flush()),
        };
        drop(out);
        if let Err(e) = result {
            self.failed(&e);
        }
    }

    /// Opens the file again by its path (after a rotation moved it) and
    /// writes there from now on. Stderr and writers have nothing to
    /// reopen. On failure the old file stays in use.
    pub fn reopen(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file = open_append(path)?;
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *out = Out::File(file);
        Ok(())
    }

    /// The file written to, if the sink is a file.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Lines that could not be written since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Counts a failed write; reports the first. Not through `tracing`:
    /// this runs inside the subscriber, where events are dropped.
    fn failed(&self, e: &std::io::Error) {
        if self.failures.fetch_add(1, Ordering::Relaxed) == 0 {
            let place = self
                .path
                .as_ref()
                .map_or_else(|| "stderr".to_string(), |p| p.display().to_string());
            let _ = writeln!(
                std::io::stderr(),
                "doorward: cannot write the audit trail to {place}: {e} (further failures are counted, not repeated)"
            );
        }
    }
}

#[cfg(unix)]
fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Reopens `sink`'s file on every SIGHUP, for the process's life (beside
/// the config reload that SIGHUP also starts: each listener gets every
/// signal). Call inside the runtime; the handler is installed before this
/// returns. Nothing to do for stderr.
#[cfg(unix)]
pub fn reopen_on_sighup(sink: Arc<Sink>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    if sink.path().is_none() {
        return Ok(());
    }
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let file = sink.path().map(|p| p.display().to_string()).unwrap_or_default();
            match sink.reopen() {
                Ok(()) => tracing::info!(%file, "audit trail reopened"),
                Err(e) => {
                    tracing::error!(%file, error = %e, "cannot reopen the audit trail: still writing to the old file")
                }
            }
        }
    });
    Ok(())
}

/// For tests: a writer that keeps what is written, shared by its clones.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct Captured(pub Arc<Mutex<Vec<u8>>>);

#[cfg(test)]
impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("captured")).into_owned()
    }
}

#[cfg(test)]
impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("captured").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sink_appends_and_after_a_rotation_reopen_writes_the_new_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.json");
        std::fs::write(&path, "old\n").expect("seed");
        let sink = Sink::open(Destination::File(path.clone())).expect("opens");
        sink.write_line(b"one");
        let rotated = dir.path().join("audit.json.1");
        std::fs::rename(&path, &rotated).expect("rotate");
        sink.write_line(b"two");
        sink.reopen().expect("reopens");
        sink.write_line(b"three");
        assert_eq!(std::fs::read_to_string(&rotated).expect("read"), "old\none\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "three\n");
        assert_eq!(sink.failures(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.json");
        let sink = Sink::open(Destination::File(path.clone())).expect("opens");
        sink.write_line(b"x");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn failed_writes_are_counted_not_raised() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::open(Destination::Writer(Box::new(Broken))).expect("opens");
        sink.write_line(b"a");
        sink.write_line(b"b");
        assert_eq!(sink.failures(), 2);
    }

    #[test]
    fn a_file_in_a_missing_directory_is_an_error_at_open() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("no/such/audit.json");
        assert!(Sink::open(Destination::File(missing)).is_err());
    }
}
