//! Per-connection protocol settings and the limits they put on hyper's
//! HTTP/1.1 and HTTP/2 connection builders.

use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// Per-connection protocol settings.
#[derive(Clone)]
pub(super) struct ConnSettings {
    pub(super) http2: bool,
    pub(super) header_read_timeout: Duration,
    pub(super) idle_timeout: Duration,
    pub(super) max_header_bytes: usize,
    pub(super) http2_max_concurrent_streams: u32,
}

/// HTTP/1.1 limits: the head must arrive in time and within its size
/// (bigger gets 431 from hyper).
pub(super) fn configure_http1<B: Http1Settings>(builder: &mut B, s: &ConnSettings) {
    builder.apply(s);
}

/// HTTP/2 limits: concurrent streams, header list size (which also bounds a
/// CONTINUATION flood), and the resets a client may make us do (rapid reset,
/// CVE-2023-44487) before the connection is closed.
pub(super) fn configure_http2<B: Http2Settings>(builder: &mut B, s: &ConnSettings) {
    builder.apply(s);
}

/// hyper's HTTP/1.1 and HTTP/2 builders, behind one call each.
pub(super) trait Http1Settings {
    fn apply(&mut self, s: &ConnSettings);
}

pub(super) trait Http2Settings {
    fn apply(&mut self, s: &ConnSettings);
}

macro_rules! http1_settings {
    ($ty:ty) => {
        impl Http1Settings for $ty {
            fn apply(&mut self, s: &ConnSettings) {
                self.timer(TokioTimer::new())
                    .header_read_timeout(s.header_read_timeout)
                    // A head that does not fit the read buffer gets 431.
                    .max_buf_size(s.max_header_bytes.max(8192));
            }
        }
    };
}

macro_rules! http2_settings {
    ($ty:ty) => {
        impl Http2Settings for $ty {
            fn apply(&mut self, s: &ConnSettings) {
                self.timer(TokioTimer::new())
                    .max_concurrent_streams(s.http2_max_concurrent_streams)
                    .max_header_list_size(u32::try_from(s.max_header_bytes).unwrap_or(u32::MAX))
                    .max_pending_accept_reset_streams(50)
                    .max_local_error_reset_streams(1024)
                    .keep_alive_interval(Duration::from_secs(30))
                    .keep_alive_timeout(Duration::from_secs(20));
            }
        }
    };
}

http1_settings!(http1::Builder);
http2_settings!(http2::Builder<TokioExecutor>);
