//! doorward's pages in a real browser: Debian's `chromium` driven through
//! `chromium-driver` by selenium (pinned in tests/peers/browser) over the
//! real login flow against the real test OP: chooser with two providers,
//! sign in, the app, sign-out, signed out, a denied user, a failed login,
//! an unreachable app, the dark scheme. Screenshots go to
//! `target/screenshots/`. A missing browser or driver fails the test.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::scenario::{Options, Scenario};

const FLOW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/flow.py");
const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/pyenv/bin/python3");
const SHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/screenshots");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_work_in_chromium_over_the_real_login_flow() {
    for (tool, package) in [
        ("/usr/bin/chromium", "chromium"),
        ("/usr/bin/chromedriver", "chromium-driver"),
    ] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: install Debian's {package} (scripts/install-system-packages.sh)"
        );
    }
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing: run scripts/test.sh (it installs selenium into target/pyenv)"
    );
    let s = Scenario::start(Options {
        provider: "display_name = \"Test IdP\"".into(),
        extra: "\n[[route]]\nname = \"down\"\npath_prefix = \"/down\"\nupstream = \"http://127.0.0.1:9\"\n\
                public = [\"/down/\"]\n\n\
                [[provider]]\nname = \"second\"\nkind = \"oidc\"\ndisplay_name = \"Second IdP\"\n\
                issuer = \"@ISSUER@\"\nclient_id = \"doorward\"\nclient_secret = \"doorward-test-secret\"\n\n\
                [identity.login]\nallowed_email_domains = [\"example.com\"]\n\n[ui]\ntitle = \"Acme\"\n"
            .into(),
        ..Options::default()
    })
    .await;
    s.idp
        .set_account(
            "eve",
            &json!({"email": "eve@elsewhere.test", "email_verified": true, "preferred_username": "eve"}),
        )
        .await;
    let (base, issuer) = (s.base.clone(), s.idp.issuer.clone());
    // The browser runs while doorward, the OP and the app keep serving on
    // this runtime's other thread.
    let output = tokio::task::spawn_blocking(move || {
        Command::new(PYTHON)
            .args([FLOW, &base, &issuer, SHOTS])
            .output()
            .expect("run the browser flow")
    })
    .await
    .expect("join");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    assert!(report.contains("browser flow: ok"), "{report}");
    for shot in [
        "1-chooser",
        "3-sign-out",
        "4-signed-out",
        "5-denied",
        "6-login-failed",
        "7-bad-gateway",
    ] {
        let path = Path::new(SHOTS).join(format!("{shot}.png"));
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{} was not saved", path.display());
    }
}
