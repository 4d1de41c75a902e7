//! `[ui]`: how doorward's own pages look (sign-in chooser, sign-out,
//! errors), changed without a rebuild. The templates themselves are parsed
//! by the responder when the config is built, so `doorward check` catches a
//! broken one; here are only the keys and the checks that need no parsing.

use std::path::PathBuf;

use serde::Deserialize;

use super::issues::{absolute_http_url, Issues, KeyPath, Seg};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// The product or company name shown on every page (and in its title).
    pub title: Option<String>,
    /// An image file (PNG, SVG, JPEG, WebP, GIF; at most 512 KiB) shown
    /// above each page, served by doorward at `{prefix}/ui/logo`.
    pub logo: Option<PathBuf>,
    /// Buttons and links: `#rgb` or `#rrggbb`.
    pub accent_color: String,
    /// A line of plain text at the foot of every page.
    pub footer: Option<String>,
    /// Makes the footer a link (an absolute http(s) URL).
    pub footer_url: Option<String>,
    /// A directory whose `*.html` / `style.css` files replace the built-in
    /// templates of the same name; the others stay built in.
    pub templates_dir: Option<PathBuf>,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            title: None,
            logo: None,
            accent_color: "#2563eb".into(),
            footer: None,
            footer_url: None,
            templates_dir: None,
        }
    }
}

/// Whether `color` is `#rgb` or `#rrggbb`: it goes into the stylesheet, so
/// nothing else may (no `;`, `}` or `url(`).
pub fn is_hex_color(color: &str) -> bool {
    color
        .strip_prefix('#')
        .is_some_and(|hex| matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub(super) fn check(ui: &UiConfig, issues: &mut Issues) {
    let at = |key: &'static str| KeyPath::of(&[Seg::Key("ui"), Seg::Key(key)]);
    if !is_hex_color(&ui.accent_color) {
        issues.push((
            at("accent_color"),
            format!("`{}` is not a colour; write `#rgb` or `#rrggbb`", ui.accent_color),
        ));
    }
    if let Some(url) = &ui.footer_url {
        if let Err(why) = absolute_http_url(url) {
            issues.push((at("footer_url"), why));
        }
        if ui.footer.is_none() {
            issues.push((at("footer_url"), "needs `footer`, the link's text".into()));
        }
    }
    if let Some(dir) = &ui.templates_dir {
        if !dir.is_dir() {
            issues.push((at("templates_dir"), format!("{} is not a directory", dir.display())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accent_colors_are_hex_only() {
        for good in ["#fff", "#2563EB"] {
            assert!(is_hex_color(good), "{good}");
        }
        for bad in ["red", "#12345", "#ggg", "#fff;}body{", "2563eb", ""] {
            assert!(!is_hex_color(bad), "{bad}");
        }
    }
}
