//! The pages doorward shows itself: the provider chooser, sign-out and
//! signed out, access denied, sign-in failed and error pages. One template
//! set (built in, each replaceable from `[ui] templates_dir`) inside one
//! layout, with the operator's branding; every value is escaped, and the
//! pages are served with headers that forbid scripts, framing and
//! referrers.

use http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use http::{HeaderValue, StatusCode};

use super::template::{Template, Value, Vars};
use super::theme::{Theme, ThemeError};
use super::{full, Reply};
use crate::config::ui::UiConfig;
use crate::config::Config;

/// What the user is told for a status: short, generic, never the cause.
pub fn title_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "Bad request",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::PAYLOAD_TOO_LARGE => "Request too large",
        StatusCode::REQUEST_TIMEOUT => "Request timed out",
        StatusCode::UNAUTHORIZED => "Sign-in required",
        StatusCode::FORBIDDEN => "Access denied",
        StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
        StatusCode::BAD_GATEWAY => "The application is unavailable",
        StatusCode::GATEWAY_TIMEOUT => "The application did not answer in time",
        _ => "Something went wrong",
    }
}

/// The sentence under the heading: what happened, in the user's terms.
fn message_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "You need to sign in to see this page.",
        StatusCode::FORBIDDEN => "You are not allowed to see this page.",
        StatusCode::NOT_FOUND => "There is nothing at this address.",
        StatusCode::SERVICE_UNAVAILABLE => "Please try again in a few seconds.",
        StatusCode::BAD_GATEWAY => "The application behind this page is not answering. Please try again shortly.",
        StatusCode::GATEWAY_TIMEOUT => "The application took too long to answer. Please try again shortly.",
        s if s.is_client_error() => "The request could not be handled.",
        _ => "Something went wrong on our side. Please try again shortly.",
    }
}

/// No scripts at all, styles and images from doorward only, no framing, no
/// `<base>`. Forms post to doorward, whose answer may redirect to the IdP
/// (browsers apply `form-action` to that redirect too).
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                       form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'";

/// Pages doorward renders are never framed, never leak the URL onward, and
/// cannot run scripts.
pub fn with_security_headers(mut response: Reply) -> Reply {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The page set of this deployment: templates and branding, ready to render.
pub struct Pages {
    theme: Theme,
    /// The internal prefix, for links to doorward's own endpoints.
    prefix: String,
    title: String,
    footer: String,
    footer_url: String,
}

/// One provider on the chooser.
pub struct Choice {
    /// The provider's `name`, sent back as `?provider=`.
    pub name: String,
    pub display: String,
}

impl Pages {
    /// Loads the templates (built-in or from `templates_dir`) and the logo;
    /// every problem is reported with its `[ui]` key.
    pub fn from_config(config: &Config) -> Result<Self, Vec<ThemeError>> {
        Self::new(&config.ui, &config.server.internal_prefix)
    }

    fn new(ui: &UiConfig, prefix: &str) -> Result<Self, Vec<ThemeError>> {
        Ok(Self {
            theme: Theme::load(ui)?,
            prefix: prefix.to_string(),
            title: ui.title.clone().unwrap_or_default(),
            footer: ui.footer.clone().unwrap_or_default(),
            footer_url: ui.footer_url.clone().unwrap_or_default(),
        })
    }

    /// The built-in pages with no branding (for tests and tools).
    pub fn builtin() -> Self {
        match Self::new(&UiConfig::default(), "/_doorward") {
            Ok(pages) => pages,
            Err(_) => unreachable!("the built-in templates parse (tested)"),
        }
    }

    pub fn theme(&self) -> &Theme {
        &self.theme
    }

    /// The stylesheet's and logo's paths under the internal prefix.
    pub fn asset_path(&self, asset: &str) -> String {
        format!("{}/ui/{asset}", self.prefix)
    }

    /// Renders `template` with `vars` inside the layout, as a whole response.
    fn page(&self, status: StatusCode, page_title: &str, template: &Template, vars: Vars) -> Reply {
        let mut vars = vars;
        vars.push(("title", Value::Text(self.title.clone())));
        let content = template.render(&vars);
        let logo = if self.theme.logo().is_some() {
            self.asset_path("logo")
        } else {
            String::new()
        };
        let layout: Vars = vec![
            ("page_title", Value::Text(page_title.to_string())),
            ("title", Value::Text(self.title.clone())),
            ("logo_url", Value::Text(logo)),
            ("footer", Value::Text(self.footer.clone())),
            ("footer_url", Value::Text(self.footer_url.clone())),
            (
                "stylesheet_url",
                Value::Text(format!(
                    "{}?v={}",
                    self.asset_path("style.css"),
                    self.theme.style_version()
                )),
            ),
            ("content", Value::Html(content)),
        ];
        let body = self.theme.layout.render(&layout);
        with_security_headers(full(status, body, "text/html; charset=utf-8"))
    }

    /// One button per provider; each link carries the return-to along.
    pub fn chooser(&self, providers: &[Choice], return_to: &str) -> Reply {
        let items = providers
            .iter()
            .map(|choice| {
                vec![
                    ("name", Value::Text(choice.display.clone())),
                    ("url", Value::Text(self.login_url(Some(&choice.name), return_to))),
                ]
            })
            .collect();
        let vars = vec![("providers", Value::List(items))];
        self.page(StatusCode::OK, "Sign in", &self.theme.chooser, vars)
    }

    /// Who is signed in and with which provider; Sign out posts the form.
    pub fn logout_confirm(&self, user: &str, provider: &str, csrf: &str) -> Reply {
        let vars = vec![
            ("user", Value::Text(user.to_string())),
            ("provider", Value::Text(provider.to_string())),
            ("action", Value::Text(format!("{}/logout", self.prefix))),
            ("csrf", Value::Text(csrf.to_string())),
            ("cancel_url", Value::Text("/".into())),
        ];
        self.page(StatusCode::OK, "Sign out?", &self.theme.logout, vars)
    }

    pub fn signed_out(&self) -> Reply {
        let vars = vec![("login_url", Value::Text(format!("{}/login", self.prefix)))];
        self.page(StatusCode::OK, "Signed out", &self.theme.signed_out, vars)
    }

    /// 403 for a known account: who they are and what to do, never the rule
    /// that refused them.
    pub fn denied(&self, status: StatusCode, account: &str, request_id: &str) -> Reply {
        let vars = vec![
            ("user", Value::Text(account.to_string())),
            ("request_id", Value::Text(request_id.to_string())),
            ("signout_url", Value::Text(format!("{}/logout", self.prefix))),
        ];
        self.page(status, "Access denied", &self.theme.denied, vars)
    }

    /// A login that did not complete, with a link that starts a new one.
    pub fn login_failed(&self, status: StatusCode, request_id: &str) -> Reply {
        let vars = vec![
            ("retry_url", Value::Text(format!("{}/login", self.prefix))),
            ("request_id", Value::Text(request_id.to_string())),
        ];
        self.page(status, "Sign-in failed", &self.theme.login_failed, vars)
    }

    /// Any other failure: a generic heading and sentence, and the request id.
    pub fn error(&self, status: StatusCode, heading: &str, request_id: &str) -> Reply {
        let vars = vec![
            ("heading", Value::Text(heading.to_string())),
            ("message", Value::Text(message_for(status).to_string())),
            ("status", Value::Text(status.as_u16().to_string())),
            ("request_id", Value::Text(request_id.to_string())),
        ];
        self.page(status, heading, &self.theme.error, vars)
    }

    fn login_url(&self, provider: Option<&str>, return_to: &str) -> String {
        let rd: String = form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
        match provider {
            Some(name) => {
                let name: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
                format!("{}/login?provider={name}&rd={rd}", self.prefix)
            }
            None => format!("{}/login?rd={rd}", self.prefix),
        }
    }
}

/// A small error answer as JSON, for API clients.
pub fn error_json(status: StatusCode, title: &str, request_id: &str) -> Reply {
    let body = serde_json::json!({
        "error": title,
        "status": status.as_u16(),
        "request_id": request_id,
    });
    full(status, body.to_string(), "application/json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::template::html_escape;
    use crate::respond::ResponseBody;

    fn body(reply: &Reply) -> String {
        let ResponseBody::Full(Some(bytes)) = reply.body() else {
            panic!("a full body")
        };
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn pages_escape_what_they_echo() {
        assert_eq!(html_escape("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
        let pages = Pages::builtin();
        let choices = [Choice {
            name: "a b".into(),
            display: "<b>Corp</b>".into(),
        }];
        let page = body(&pages.chooser(&choices, "/x?\""));
        assert!(page.contains("&lt;b&gt;Corp") && !page.contains("<b>Corp"), "{page}");
        assert!(
            page.contains("/_doorward/login?provider=a+b&amp;rd=%2Fx%3F%22"),
            "{page}"
        );
        let page = body(&pages.denied(StatusCode::FORBIDDEN, "<script>x</script>", "r\"1"));
        assert!(!page.contains("<script>") && page.contains("&lt;script&gt;x"), "{page}");
        assert!(page.contains("r&quot;1"), "{page}");
    }

    #[test]
    fn every_page_carries_the_security_headers_and_the_stylesheet() {
        let pages = Pages::builtin();
        for page in [
            pages.error(StatusCode::BAD_GATEWAY, "The application is unavailable", "r1"),
            pages.denied(StatusCode::FORBIDDEN, "eve", "r1"),
            pages.login_failed(StatusCode::UNAUTHORIZED, "r1"),
            pages.signed_out(),
            pages.logout_confirm("alice", "Corp", "tok"),
            pages.chooser(&[], "/"),
        ] {
            assert_eq!(page.headers()[X_FRAME_OPTIONS], "DENY");
            assert_eq!(page.headers()[REFERRER_POLICY], "no-referrer");
            let csp = page.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap_or_default();
            assert!(
                csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
                "{csp}"
            );
            let text = body(&page);
            assert!(text.contains("href=\"/_doorward/ui/style.css?v="), "{text}");
            assert!(!text.contains("{{"), "{text}");
        }
    }

    #[test]
    fn pages_say_who_and_what_to_do_never_why() {
        let pages = Pages::builtin();
        let page = body(&pages.logout_confirm("alice@example.com", "Corp SSO", "tok"));
        assert!(
            page.contains("<strong>alice@example.com</strong> with Corp SSO"),
            "{page}"
        );
        assert!(
            page.contains("name=\"csrf\" value=\"tok\"") && page.contains(">Cancel</a>"),
            "{page}"
        );
        let page = body(&pages.denied(StatusCode::FORBIDDEN, "eve@elsewhere.test", "req-9"));
        assert!(
            page.contains("Your account <strong>eve@elsewhere.test</strong> is not allowed"),
            "{page}"
        );
        assert!(page.contains("req-9"), "{page}");
        let page = body(&pages.login_failed(StatusCode::UNAUTHORIZED, "req-8"));
        assert!(page.contains("href=\"/_doorward/login\">Try again</a>"), "{page}");
        let page = body(&pages.signed_out());
        assert!(page.contains("href=\"/_doorward/login\">Sign in again</a>"), "{page}");
        let page = body(&pages.error(
            StatusCode::GATEWAY_TIMEOUT,
            "The application did not answer in time",
            "r7",
        ));
        assert!(page.contains("Error 504") && page.contains("r7"), "{page}");
    }
}
