//! doorward's own pages over the real login flow: branding from `[ui]`,
//! who is signed in on the sign-out page, signed out with a way back, a
//! denied account told who it is (never why), a failed login offered a new
//! one, an upstream error with its request id; every page with its
//! security headers, its stylesheet and logo served by doorward; and a
//! broken template refused by `doorward check`.

use std::process::Command;

use crate::idp::{Browser, Page};
use crate::scenario::{Options, Scenario};
use crate::support::write_config;

const LOGO: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"8\" height=\"8\"/>";

/// Headers every page doorward renders must carry.
fn assert_page_headers(page: &Page) {
    let csp = page.header("content-security-policy").unwrap_or_default();
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing in {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert!(page.header("content-type").is_some_and(|t| t.starts_with("text/html")));
}

/// The value of the first `attr="..."` after `marker` in `body`.
fn attribute_after(body: &str, marker: &str, attr: &str) -> String {
    let from = body.find(marker).unwrap_or_else(|| panic!("no {marker} in {body}"));
    let needle = format!("{attr}=\"");
    let start = body[from..].find(&needle).expect("attribute") + from + needle.len();
    let end = body[start..].find('"').expect("closing quote") + start;
    body[start..end].replace("&amp;", "&")
}

fn branded(dir: &std::path::Path) -> Options {
    let logo = dir.join("logo.svg");
    std::fs::write(&logo, LOGO).expect("write logo");
    Options {
        extra: format!(
            "\n[ui]\ntitle = \"Acme <Corp>\"\nlogo = \"{}\"\naccent_color = \"#ff0066\"\n\
             footer = \"Help & support\"\nfooter_url = \"https://help.example.com/\"\n",
            logo.display()
        ),
        ..Options::default()
    }
}

#[tokio::test]
async fn branded_sign_out_shows_who_and_signed_out_leads_back_to_sign_in() {
    let dir = tempfile::tempdir().expect("dir");
    let s = Scenario::start(branded(dir.path())).await;
    let mut browser = s.logged_in("alice", "/").await;

    let confirm = browser.get(&s.url("/_doorward/logout")).await;
    assert_eq!(confirm.status, 200);
    assert_page_headers(&confirm);
    let body = &confirm.body;
    assert!(body.contains("<title>Sign out? · Acme &lt;Corp&gt;</title>"), "{body}");
    assert!(
        body.contains("signed in as <strong>alice@example.com</strong> with test-idp"),
        "{body}"
    );
    assert!(
        body.contains(">Sign out</button>") && body.contains("href=\"/\">Cancel</a>"),
        "{body}"
    );
    assert!(
        body.contains("<img class=\"logo\" src=\"/_doorward/ui/logo\" alt=\"Acme &lt;Corp&gt;\">"),
        "{body}"
    );
    assert!(
        body.contains("<a href=\"https://help.example.com/\">Help &amp; support</a>"),
        "{body}"
    );

    // The stylesheet and logo come from doorward itself (the CSP allows
    // nothing else), with the accent colour in place.
    let css_url = attribute_after(body, "rel=\"stylesheet\"", "href");
    let css = browser.get(&s.url(&css_url)).await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert!(css.body.contains("--accent: #ff0066;"), "{}", css.body);
    assert!(css.body.contains("prefers-color-scheme: dark"), "light and dark");
    let logo = browser.get(&s.url("/_doorward/ui/logo")).await;
    assert_eq!(logo.status, 200);
    assert_eq!(logo.header("content-type"), Some("image/svg+xml"));
    assert_eq!(logo.body, LOGO);

    // Sign out (IdP confirms), then the signed-out page links to a new login.
    let at_idp = browser.submit(&confirm, "alice", &[]).await;
    let done = browser.submit(&at_idp, "alice", &[("logout", "yes")]).await;
    assert_eq!(done.url.as_str(), s.url("/_doorward/logged-out"), "{}", done.body);
    assert_page_headers(&done);
    assert!(done.body.contains("<h1>Signed out</h1>"), "{}", done.body);
    assert!(done.body.contains("signed out of Acme &lt;Corp&gt;"), "{}", done.body);
    let again = attribute_after(&done.body, "class=\"actions\"", "href");
    assert_eq!(again, "/_doorward/login");
    let restart = browser.get(&s.url(&again)).await;
    assert_eq!(restart.status, 302);
    assert!(
        restart
            .location()
            .is_some_and(|l| l.as_str().starts_with(&s.idp.issuer)),
        "Sign in again starts a login: {:?}",
        restart.location()
    );
}

#[tokio::test]
async fn a_denied_account_sees_its_name_and_the_request_id_never_the_rule() {
    let s = Scenario::start(Options {
        route: "require_groups = [\"secret-admins\"]".into(),
        ..Options::default()
    })
    .await;
    let mut browser = Browser::default();
    let page = browser.login(&s.url("/"), "alice", &s.idp).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert_page_headers(&page);
    let id = page.header("x-request-id").expect("request id").to_string();
    assert!(
        page.body
            .contains("Your account <strong>alice@example.com</strong> is not allowed to use this app"),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!("<code>{id}</code>")), "{}", page.body);
    assert!(!page.body.contains("secret-admins"), "the rule stays in the log");
    assert!(
        page.body.contains("href=\"/_doorward/logout\""),
        "a way to switch accounts"
    );
}

#[tokio::test]
async fn a_failed_login_offers_a_new_one_and_upstream_errors_carry_the_request_id() {
    let s = Scenario::start(Options {
        extra: "\n[[route]]\nname = \"down\"\npath_prefix = \"/down\"\nupstream = \"http://127.0.0.1:9\"\n\
                public = [\"/down/\"]\n"
            .into(),
        ..Options::default()
    })
    .await;
    let mut browser = Browser::default();
    let failed = browser.get(&s.url("/_doorward/callback?code=x&state=forged")).await;
    assert_eq!(failed.status, 401);
    assert_page_headers(&failed);
    assert!(failed.body.contains("<h1>Sign-in failed</h1>"), "{}", failed.body);
    assert!(!failed.body.contains("state"), "no reason on the page: {}", failed.body);
    let retry = attribute_after(&failed.body, "class=\"actions\"", "href");
    let restart = browser.get(&s.url(&retry)).await;
    assert!(
        restart
            .location()
            .is_some_and(|l| l.as_str().starts_with(&s.idp.issuer)),
        "Try again starts a login: {:?}",
        restart.location()
    );

    let down = browser.get(&s.url("/down/x")).await;
    assert_eq!(down.status, 502);
    assert_page_headers(&down);
    let id = down.header("x-request-id").expect("request id");
    assert!(
        down.body.contains("<h1>The application is unavailable</h1>"),
        "{}",
        down.body
    );
    assert!(
        down.body.contains("Error 502") && down.body.contains(id),
        "{}",
        down.body
    );
    assert!(!down.body.contains("127.0.0.1:9"), "no internals: {}", down.body);
}

#[test]
fn check_refuses_a_broken_template_and_a_bad_accent_colour() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("denied.html"), "<p>{{user}}</p>\n<p>{{reason}}</p>\n").expect("write");
    let config = write_config(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[ui]\naccent_color = \"red;}}\"\ntemplates_dir = \"{}\"\n",
        dir.path().display()
    ));
    let output = Command::new(env!("CARGO_BIN_EXE_doorward"))
        .args(["check", "-c"])
        .arg(config.path())
        .output()
        .expect("run doorward check");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let template = dir.path().join("denied.html");
    for want in [
        "ui.accent_color: `red;}` is not a colour".to_string(),
        format!(
            "ui.templates_dir: {}: line 2: `reason` is not a variable of this page",
            template.display()
        ),
    ] {
        assert!(stderr.contains(&want), "missing {want:?} in:\n{stderr}");
    }
}

/// doorward's pages are `no-referrer`, so a browser posts the sign-out form
/// with `Origin: null`: the CSRF token decides then. A foreign Origin is
/// refused even with the right token.
#[tokio::test]
async fn sign_out_takes_origin_null_with_the_token_and_refuses_a_foreign_origin() {
    let s = Scenario::start(Options::default()).await;
    let mut confirm_browser = s.logged_in("alice", "/").await;
    let confirm = confirm_browser.get(&s.url("/_doorward/logout")).await;
    let csrf = attribute_after(&confirm.body, "name=\"csrf\"", "value");
    let cookie = format!(
        "doorward={}",
        confirm_browser.cookie("doorward").expect("session cookie").value
    );
    let endpoint = url::Url::parse(&s.url("/_doorward/logout")).expect("url");
    let post = |origin: &'static str| {
        let (endpoint, cookie) = (endpoint.clone(), cookie.clone());
        let body = format!("csrf={csrf}");
        async move {
            crate::idp::raw_request(
                "POST",
                &endpoint,
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("cookie", &cookie),
                    ("origin", origin),
                ],
                body.into(),
            )
            .await
        }
    };
    assert_eq!(post("https://evil.example").await.status, 403, "a foreign origin");
    let still = confirm_browser.get(&s.url("/still-in")).await;
    assert_eq!(still.status, 200, "the session survived the forged post");
    let done = post("null").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(
        done.header("location").is_some_and(|l| l.starts_with(&s.idp.issuer)),
        "{:?}",
        done.header("location")
    );
    assert_eq!(confirm_browser.get(&s.url("/after")).await.status, 302, "signed out");
}
