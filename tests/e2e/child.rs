//! The real `doorward serve` binary as a child process, for tests that
//! need a process of its own (signals, /proc figures, a restart): started
//! on port 0, found through /proc rather than its log, killed on drop.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the real binary may take to start serving.
const CHILD_START_DEADLINE: Duration = Duration::from_secs(30);
/// Lines of the child's output kept for failure messages.
const CHILD_TAIL_LINES: usize = 40;

/// The last lines a child wrote (stdout and stderr, interleaved as read),
/// and whoever listens to its log (stdout) as it is written.
#[derive(Clone, Default)]
pub struct OutputTail(
    Arc<Mutex<std::collections::VecDeque<String>>>,
    Arc<Mutex<Vec<tokio::sync::mpsc::UnboundedSender<String>>>>,
);

impl OutputTail {
    /// Drains `pipe` on a thread of its own (a full pipe would block the
    /// child's writes), keeping the last lines.
    fn follow(&self, pipe: impl std::io::Read + Send + 'static, label: &'static str) {
        use std::io::BufRead;
        let tail = self.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if label == "out" {
                    tail.1
                        .lock()
                        .expect("listeners lock")
                        .retain(|l| l.send(line.clone()).is_ok());
                }
                let mut lines = tail.0.lock().expect("tail lock");
                if lines.len() == CHILD_TAIL_LINES {
                    lines.pop_front();
                }
                lines.push_back(format!("{label}: {line}"));
            }
        });
    }

    /// Delivers the log lines written from now on to `listener`.
    fn listen(&self, listener: tokio::sync::mpsc::UnboundedSender<String>) {
        self.1.lock().expect("listeners lock").push(listener);
    }

    pub fn text(&self) -> String {
        let lines = self.0.lock().expect("tail lock");
        lines.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
    }
}

/// The TCP sockets process `pid` is listening on, read from /proc (so
/// finding the port does not depend on the log level or format).
pub fn listening_sockets(pid: u32) -> Vec<SocketAddr> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: std::collections::HashSet<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(target.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut found = Vec::new();
    for (table, v6) in [("tcp", false), ("tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, state 0A = LISTEN, inode is the 10th field.
            if fields.len() < 10 || fields[3] != "0A" || !inodes.contains(fields[9]) {
                continue;
            }
            if let Some(addr) = proc_net_addr(fields[1], v6) {
                found.push(addr);
            }
        }
    }
    found
}

/// `0100007F:1F90` (little-endian words, as /proc/net/tcp{,6} print them).
fn proc_net_addr(text: &str, v6: bool) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..ip.len() / 8)
        .map(|i| u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).map(u32::from_be))
        .collect::<Result<_, _>>()
        .ok()?;
    let ip: std::net::IpAddr = if v6 {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).into()
    } else {
        std::net::Ipv4Addr::from(words.first()?.to_be_bytes()).into()
    };
    let ip = match ip {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        other => other,
    };
    Some(SocketAddr::new(ip, port))
}

/// Whether `addr` answers `GET /_doorward/healthz` with 200 (blocking,
/// bounded: for use before any runtime-bound client is at hand).
fn healthz_ok(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut tcp) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /_doorward/healthz HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n";
    if tcp.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// The real `doorward serve` binary as a child process, at any log level or
/// format. Killed and reaped on drop, panics included.
pub struct ChildDoorward {
    pub addr: SocketAddr,
    child: std::process::Child,
    /// The last lines of its output, for failure messages.
    pub output: OutputTail,
}

impl ChildDoorward {
    /// Starts `doorward serve -c config` and waits (at most 30 s) until it
    /// listens and its health check answers. The port is read from /proc,
    /// not from the log, so a quiet log level does not hang the test; a
    /// child that exits or never serves fails with the tail of its output.
    pub fn serve(config: &std::path::Path) -> Self {
        Self::serve_with(config, |_| {})
    }

    /// Like [`ChildDoorward::serve`], letting `adjust` change the command
    /// first (environment, resource limits).
    pub fn serve_with(config: &std::path::Path, adjust: impl FnOnce(&mut std::process::Command)) -> Self {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_doorward"));
        command
            .args(["serve", "-c"])
            .arg(config)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        adjust(&mut command);
        let child = command.spawn().expect("start doorward");
        // Guard first, so a doorward that never starts serving is still
        // killed when a panic below unwinds.
        let mut this = Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            child,
            output: OutputTail::default(),
        };
        this.output.follow(this.child.stdout.take().expect("stdout"), "out");
        this.output.follow(this.child.stderr.take().expect("stderr"), "err");
        let deadline = std::time::Instant::now() + CHILD_START_DEADLINE;
        loop {
            if let Ok(Some(status)) = this.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100)); // let the tail catch up
                panic!(
                    "doorward exited ({status}) before serving; its output ended:\n{}",
                    this.output.text()
                );
            }
            let listening = listening_sockets(this.pid());
            match listening[..] {
                [addr] if healthz_ok(addr) => {
                    this.addr = addr;
                    return this;
                }
                [_, _, ..] => panic!(
                    "doorward listens on several sockets ({listening:?}); ChildDoorward needs one to know \
                     which is the proxy. Its output ended:\n{}",
                    this.output.text()
                ),
                _ => {}
            }
            assert!(
                std::time::Instant::now() < deadline,
                "doorward did not serve within {CHILD_START_DEADLINE:?}; its output ended:\n{}",
                this.output.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Like [`ChildDoorward::serve`], with its log lines from then on
    /// delivered to the returned [`ChildLog`].
    pub fn serve_logged(config: &std::path::Path) -> (Self, ChildLog) {
        let this = Self::serve(config);
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        this.output.listen(tx);
        (this, ChildLog { lines })
    }

    /// Sends a signal by name (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) {
        let sent = std::process::Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -s {name} failed");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `/proc/PID/status` figure in KiB, e.g. `VmHWM` (peak RSS).
    pub fn proc_status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status:\n{status}"))
    }
}

impl Drop for ChildDoorward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The log lines of a [`ChildDoorward`], as it writes them.
pub struct ChildLog {
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl ChildLog {
    /// The next line containing every one of `needles` (lines before it
    /// are passed over); panics after 30 s or when the log ends.
    pub async fn wait_for(&mut self, needles: &[&str]) -> String {
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = self.lines.recv().await {
                if needles.iter().all(|n| line.contains(n)) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            Ok(None) => panic!("doorward's log ended without a line with {needles:?}"),
            Err(_) => panic!("no log line with {needles:?} within 30 s"),
        }
    }
}
