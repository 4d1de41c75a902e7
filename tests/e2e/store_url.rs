//! A mistyped `[store] url` is refused without its password: the URL may
//! carry one (`postgres://user:password@host/db`), and a refused config's
//! message lands in terminals, CI logs and the reload log line.

use std::process::Command;

use crate::child::ChildDoorward;
use crate::support::{get, write_config, Proxy, Upstream};

const PASSWORD: &str = "hunter2";

fn config(upstream: &str, store: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\nlevel = \"info\"\n\
         [store]\nurl = \"{store}\"\n{}",
        Proxy::route(upstream, "public = [\"/public/\"]")
    )
}

#[tokio::test]
async fn a_mistyped_store_url_is_refused_at_check_serve_and_reload_without_its_password() {
    let app = Upstream::start().await;
    let mistyped = format!("postgress://u:{PASSWORD}@h/db");
    let file = write_config(&config(&app.url(), &mistyped));
    for command in ["check", "serve"] {
        let output = Command::new(env!("CARGO_BIN_EXE_doorward"))
            .args([command, "-c"])
            .arg(file.path())
            .output()
            .expect("run doorward");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(1), "{command}: {said}");
        assert!(said.contains("store.url"), "{command} names the key: {said}");
        assert!(said.contains("`postgress`"), "{command} names the scheme: {said}");
        assert!(!said.contains(PASSWORD), "{command} leaks the password: {said}");
    }

    let store = tempfile::tempdir().expect("tempdir");
    let good = config(&app.url(), &format!("sqlite://{}/doorward.db", store.path().display()));
    std::fs::write(file.path(), &good).expect("write config");
    let (child, mut log) = ChildDoorward::serve_logged(file.path());
    std::fs::write(file.path(), good.replace("sqlite://", "postgress://u:hunter2@")).expect("rewrite config");
    child.signal("HUP");
    let line = log.wait_for(&["config reload refused", "store.url"]).await;
    assert!(!line.contains(PASSWORD), "{line}");
    assert!(line.contains("`postgress`"), "{line}");
    let (status, _, _) = get(child.addr, "/public/still", &[]).await;
    assert_eq!(status, 200, "the running config still serves");
}

#[tokio::test]
async fn the_store_refuses_an_unknown_scheme_by_its_scheme_alone() {
    let options = doorward::store::StoreOptions::default();
    for url in [
        format!("postgress://u:{PASSWORD}@h/db"),
        format!("mysql://h/db?password={PASSWORD}"),
    ] {
        let error = doorward::store::Store::open(&url, &options)
            .await
            .err()
            .expect("refused");
        assert!(
            matches!(&error, doorward::store::StoreError::UnsupportedUrl(_)),
            "{error}"
        );
        assert!(!error.to_string().contains(PASSWORD), "{error}");
    }
}
