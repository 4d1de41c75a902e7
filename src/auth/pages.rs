//! The few pages doorward shows itself: the provider chooser, the logout
//! confirmation, and "signed out". Small, static, escaped.

use crate::proxy::errors::html_escape;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:30rem;margin:4rem auto;padding:0 1rem\">\
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
    page("Sign in", &items)
}

pub fn logout_confirm(action: &str, csrf: &str) -> String {
    page(
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
    page(
        "Signed out",
        "<p>You have been signed out. <a href=\"/\">Sign in again</a>.</p>",
    )
}
