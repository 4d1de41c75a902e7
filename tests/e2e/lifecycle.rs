//! Starting, stopping and configuring: graceful drain, SIGTERM on the real
//! binary, and config errors that name file, line and key.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{get, listening_addr, write_config, Proxy, Upstream};

#[tokio::test]
async fn shutdown_drains_in_flight_requests_and_stops_accepting() {
    let upstream = Upstream::start().await;
    let mut proxy = Proxy::start(&format!(
        "[server]\nshutdown_grace = \"5s\"\n{}",
        Proxy::route(&upstream.url(), "public = [\"/\"]")
    ))
    .await;
    let addr = proxy.addr;
    let in_flight = tokio::spawn(async move { get(addr, "/slow/800", &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let drained = proxy.shutdown();
    let (status, _, body) = in_flight.await.expect("request task");
    assert_eq!(
        (status.as_u16(), &body[..]),
        (200, &b"slow done"[..]),
        "in-flight request finished"
    );
    tokio::time::timeout(Duration::from_secs(5), drained)
        .await
        .expect("drain finished within the grace period")
        .expect("server task");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn the_grace_period_bounds_the_drain() {
    let upstream = Upstream::start().await;
    let mut proxy = Proxy::start(&format!(
        "[server]\nshutdown_grace = \"300ms\"\n{}",
        Proxy::route(&upstream.url(), "public = [\"/\"]")
    ))
    .await;
    let addr = proxy.addr;
    let _stuck = tokio::spawn(async move { get(addr, "/slow/10000", &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(3), proxy.shutdown())
        .await
        .expect("drain gave up at the grace period")
        .expect("server task");
    assert!(started.elapsed() >= Duration::from_millis(250));
}

fn doorward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_doorward"))
}

#[test]
fn check_accepts_the_example_config() {
    let output = doorward()
        .args([
            "check",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"),
        ])
        .output()
        .expect("run doorward check");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn check_reports_every_problem_with_file_line_and_key() {
    let file = write_config(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[[route]]\nname = \"a\"\nupstream = \"ftp://x\"\npublic = [\"/ok/\", \"/../x\"]\n\n\
         [[route]]\nname = \"a\"\nupstream = \"http://127.0.0.1:1\"\n",
    );
    let output = doorward()
        .args(["check", "--config"])
        .arg(file.path())
        .output()
        .expect("run doorward check");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let name = file.path().display().to_string();
    for want in [
        format!("{name}:6:12: route[0].upstream: `ftp://x` must be an absolute http:// or https:// URL"),
        format!("{name}:7:19: route[0].public[1]: `/../x` is not in normal form; write `/x`"),
        format!("{name}:10:8: route[1].name: route name `a` is used twice"),
    ] {
        assert!(stderr.contains(&want), "missing {want:?} in:\n{stderr}");
    }
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let file = write_config("[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"forever\"\n");
    let output = doorward().args(["check", "-c"]).arg(file.path()).output().expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains(":3:18: server.shutdown_grace: `forever` is not a duration"),
        "{stderr}"
    );

    let file = write_config(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[[route]]\nname = \"a\"\nupstream = \"http://x\"\nupsteam = 1\n",
    );
    let output = doorward().args(["check", "-c"]).arg(file.path()).output().expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(":7:1: route[0].upsteam: unknown field `upsteam`"),
        "{stderr}"
    );

    let output = doorward()
        .args(["check", "-c", "/nonexistent/doorward.toml"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read config file /nonexistent/doorward.toml"));
}

#[test]
fn serve_refuses_a_bad_config_without_starting() {
    let file = write_config("[server]\nlisten = \"127.0.0.1:0\"\nbogus = true\n");
    let output = doorward().args(["serve", "-c"]).arg(file.path()).output().expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown field `bogus`"));
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero_and_healthcheck_works() {
    let upstream = Upstream::start().await;
    let config = write_config(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"5s\"\n[log]\nformat = \"json\"\n{}",
        Proxy::route(&upstream.url(), "public = [\"/\"]")
    ));
    let mut child = doorward()
        .args(["serve", "-c"])
        .arg(config.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start doorward");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let addr = listening_addr(&mut stdout);

    let (status, _, _) = get(addr, "/_doorward/healthz", &[]).await;
    assert_eq!(status, 200);
    let probe_config = write_config(&format!(
        "[server]\nlisten = \"{addr}\"\n{}",
        Proxy::route(&upstream.url(), "")
    ));
    let healthcheck = || {
        doorward()
            .args(["healthcheck", "-c"])
            .arg(probe_config.path())
            .output()
            .expect("run")
    };
    assert!(healthcheck().status.success(), "healthcheck passes while serving");
    let in_flight = tokio::spawn(async move { get(addr, "/slow/700", &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(killed.success());
    let (status, _, _) = in_flight.await.expect("request task");
    assert_eq!(status, 200, "the in-flight request finished during the drain");
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(exit.success(), "exit status {exit:?}");
    let after = healthcheck();
    assert!(!after.status.success(), "healthcheck fails once stopped");
    assert!(String::from_utf8_lossy(&after.stderr).contains("unhealthy"));
}
