//! Large bodies stream through the real binary in bounded memory: 1 GiB
//! down and 1 GiB up, then doorward's peak RSS is checked.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::child::ChildDoorward;
use crate::support::{write_config, Proxy, Repeat, Upstream};

const GIB: u64 = 1 << 30;
/// Peak resident memory doorward may reach over the whole run.
const PEAK_RSS_LIMIT_KIB: u64 = 64 * 1024;
/// Far beyond what either transfer should take, but a hang still fails.
const TRANSFER_LIMIT: Duration = Duration::from_secs(600);

fn mib_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_each_way_streams_in_bounded_memory() {
    let upstream = Upstream::start().await;
    // The route timeout covers the whole upload (the upstream answers
    // /upload only once it has read the body), so it is lifted well above
    // what 1 GiB takes in a debug build; memory is what is tested here.
    let config = write_config(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n{}",
        Proxy::route(&upstream.url(), "public = [\"/\"]\ntimeout = \"600s\"")
    ));
    let doorward = ChildDoorward::serve(config.path());
    let at_start = doorward.proc_status_kib("VmHWM");

    // Download: count the bytes as they arrive, keep none of them.
    let started = Instant::now();
    let downloaded = tokio::time::timeout(TRANSFER_LIMIT, async {
        let tcp = TcpStream::connect(doorward.addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let req = Request::get(format!("/download/{GIB}"))
            .header("host", "app.test")
            .body(Empty::<Bytes>::new())
            .expect("request");
        let response = sender.send_request(req).await.expect("response");
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let mut total: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.expect("download frame");
            if let Some(data) = frame.data_ref() {
                total += data.len() as u64;
            }
        }
        total
    })
    .await
    .expect("download finished in time");
    let download_time = started.elapsed();
    assert_eq!(downloaded, GIB, "bytes downloaded");
    let after_download = doorward.proc_status_kib("VmHWM");

    // Upload: a streamed body with its length declared up front.
    let started = Instant::now();
    let (status, answer) = tokio::time::timeout(TRANSFER_LIMIT, async {
        let tcp = TcpStream::connect(doorward.addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let req = Request::post("/upload")
            .header("host", "app.test")
            .header("content-length", GIB.to_string())
            .body(Repeat::new(GIB))
            .expect("request");
        let response = sender.send_request(req).await.expect("response");
        let status = response.status();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        (status, body)
    })
    .await
    .expect("upload finished in time");
    let upload_time = started.elapsed();
    assert_eq!(
        (status.as_u16(), String::from_utf8_lossy(&answer).as_ref()),
        (200, GIB.to_string().as_str()),
        "the upstream received every uploaded byte"
    );
    let upload_seen = upstream.last();
    assert_eq!(upload_seen.target, "/upload");
    assert_eq!(
        upload_seen.header("content-length"),
        Some(GIB.to_string().as_str()),
        "the declared length went upstream"
    );

    let peak = doorward.proc_status_kib("VmHWM");
    eprintln!(
        "large bodies: download 1 GiB in {download_time:.1?} ({:.0} MiB/s), upload 1 GiB in \
         {upload_time:.1?} ({:.0} MiB/s); doorward VmHWM {} KiB at start, {} KiB after the \
         download, {} KiB at the end (limit {} KiB)",
        mib_per_s(GIB, download_time),
        mib_per_s(GIB, upload_time),
        at_start,
        after_download,
        peak,
        PEAK_RSS_LIMIT_KIB,
    );
    assert!(
        peak < PEAK_RSS_LIMIT_KIB,
        "doorward's peak RSS was {peak} KiB (limit {PEAK_RSS_LIMIT_KIB} KiB)"
    );
}
