//! The pages doorward shows itself: error pages, the provider chooser, the
//! logout confirmation and "signed out". Small, static, escaped, and served
//! with headers that keep them out of frames and other origins' reach.

use http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use http::{HeaderValue, StatusCode};

use super::{full, Reply};

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

/// A strict policy: no scripts, no outside assets, no framing.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self' https: http:; \
                   frame-ancestors 'none'; base-uri 'none'";

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

/// A small error answer in the client's preferred form.
pub fn error(status: StatusCode, title: &str, request_id: &str, json: bool) -> Reply {
    if json {
        let body = serde_json::json!({
            "error": title,
            "status": status.as_u16(),
            "request_id": request_id,
        });
        return full(status, body.to_string(), "application/json");
    }
    let body = format!(
        "<p>HTTP {code}. If this keeps happening, give this reference to your administrator: \
         <code>{id}</code></p>",
        code = status.as_u16(),
        id = html_escape(request_id),
    );
    with_security_headers(full(status, document(title, &body), "text/html; charset=utf-8"))
}

/// A whole page around `body` (already escaped HTML).
pub fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem\">\
         <h1>{title}</h1>{body}</body></html>\n",
        title = html_escape(title),
    )
}

/// One button per provider; each link carries the return-to along.
pub fn chooser(login_path: &str, providers: &[(String, String)], return_to: &str) -> String {
    let rd: String = form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
    let items: String = providers
        .iter()
        .map(|(name, display)| {
            let name: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
            format!(
                "<p><a href=\"{login}?provider={name}&amp;rd={rd}\" style=\"display:block;padding:.75rem 1rem;\
                 border:1px solid #888;border-radius:.4rem;text-decoration:none\">Sign in with {display}</a></p>",
                login = html_escape(login_path),
                display = html_escape(display),
            )
        })
        .collect();
    document("Sign in", &items)
}

pub fn logout_confirm(action: &str, csrf: &str) -> String {
    document(
        "Sign out?",
        &format!(
            "<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" style=\"padding:.6rem 1.2rem\">Sign out</button></form>",
            action = html_escape(action),
            csrf = html_escape(csrf),
        ),
    )
}

pub fn signed_out() -> String {
    document(
        "Signed out",
        "<p>You have been signed out. <a href=\"/\">Sign in again</a>.</p>",
    )
}

/// A page that posts a form to another site at once (SAML HTTP-POST
/// binding, front-channel logout). Without scripts (the CSP forbids them)
/// the user presses the button; `autosubmit` pages carry a tiny inline
/// script allowed by its hash only where the caller sets that header.
pub fn post_form(action: &str, fields: &[(&str, &str)]) -> String {
    let inputs: String = fields
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                html_escape(name),
                html_escape(value)
            )
        })
        .collect();
    document(
        "Continue",
        &format!(
            "<form method=\"post\" action=\"{action}\">{inputs}<button type=\"submit\">Continue</button></form>",
            action = html_escape(action)
        ),
    )
}

pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_echo() {
        assert_eq!(html_escape("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
        let page = chooser("/_doorward/login", &[("a".into(), "<b>Corp</b>".into())], "/x?\"");
        assert!(page.contains("&lt;b&gt;Corp") && !page.contains("<b>Corp"), "{page}");
    }

    #[test]
    fn error_pages_carry_the_security_headers() {
        let page = error(StatusCode::FORBIDDEN, "Access denied", "r1", false);
        assert_eq!(page.headers()[X_FRAME_OPTIONS], "DENY");
        assert!(page.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .is_ok_and(|v| v.contains("frame-ancestors 'none'")));
    }
}
