//! `doorward healthcheck`: a tiny blocking HTTP/1.1 GET of the health
//! endpoint, so container images need no curl.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Checks that `addr` answers `GET {prefix}/healthz` with 200. A TLS
/// listener is only checked for accepting connections: its certificate
/// need not name the loopback address.
pub fn healthz(addr: SocketAddr, prefix: &str, tls: bool) -> Result<(), String> {
    let timeout = Duration::from_secs(3);
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    if tls {
        return Ok(());
    }
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let request = format!("GET {prefix}/healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send: {e}"))?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| format!("no answer: {e}"))?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    if status_line.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("answered `{}`", status_line.lines().next().unwrap_or("")))
    }
}
