//! The template set and assets behind [`super::page::Pages`]: the built-in
//! templates compiled into the binary, any of them replaced by a file of
//! the same name in `[ui] templates_dir`, the stylesheet rendered once with
//! the accent colour, and the logo read once. Loading reports every broken
//! template (with its file and line) so `doorward check` refuses it.

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::template::{Schema, Template, Value};
use crate::config::ui::UiConfig;

/// The largest logo doorward will serve: it is read into memory once.
const MAX_LOGO_BYTES: u64 = 512 * 1024;

/// Names every page template may use besides its own.
const LAYOUT: Schema = Schema {
    names: &[
        "page_title",
        "title",
        "logo_url",
        "footer",
        "footer_url",
        "stylesheet_url",
        "content",
    ],
    lists: &[],
};
const CHOOSER: Schema = Schema {
    names: &["title"],
    lists: &[("providers", &["name", "url"])],
};
const LOGOUT: Schema = Schema {
    names: &["title", "user", "provider", "action", "csrf", "cancel_url"],
    lists: &[],
};
const SIGNED_OUT: Schema = Schema {
    names: &["title", "login_url"],
    lists: &[],
};
const DENIED: Schema = Schema {
    names: &["title", "user", "request_id", "signout_url"],
    lists: &[],
};
const LOGIN_FAILED: Schema = Schema {
    names: &["title", "retry_url", "request_id"],
    lists: &[],
};
const ERROR: Schema = Schema {
    names: &["title", "heading", "message", "status", "request_id"],
    lists: &[],
};
const STYLE: Schema = Schema {
    names: &["accent_color"],
    lists: &[],
};

/// Every template: its file name, built-in text and the names it may use.
const TEMPLATES: [(&str, &str, &Schema); 8] = [
    ("layout.html", include_str!("theme/layout.html"), &LAYOUT),
    ("chooser.html", include_str!("theme/chooser.html"), &CHOOSER),
    ("logout.html", include_str!("theme/logout.html"), &LOGOUT),
    ("signed_out.html", include_str!("theme/signed_out.html"), &SIGNED_OUT),
    ("denied.html", include_str!("theme/denied.html"), &DENIED),
    (
        "login_failed.html",
        include_str!("theme/login_failed.html"),
        &LOGIN_FAILED,
    ),
    ("error.html", include_str!("theme/error.html"), &ERROR),
    ("style.css", include_str!("theme/style.css"), &STYLE),
];

/// A problem with `[ui]`, for the config loader to place in the file.
#[derive(Debug, Clone)]
pub struct ThemeError {
    pub key: &'static str,
    pub message: String,
}

impl fmt::Display for ThemeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The operator's logo, served as is.
pub struct Logo {
    pub bytes: bytes::Bytes,
    pub content_type: &'static str,
}

pub struct Theme {
    pub(super) layout: Template,
    pub(super) chooser: Template,
    pub(super) logout: Template,
    pub(super) signed_out: Template,
    pub(super) denied: Template,
    pub(super) login_failed: Template,
    pub(super) error: Template,
    style: bytes::Bytes,
    style_version: String,
    logo: Option<Logo>,
}

impl Theme {
    pub fn load(ui: &UiConfig) -> Result<Self, Vec<ThemeError>> {
        let mut errors = Vec::new();
        let mut parsed = Vec::with_capacity(TEMPLATES.len());
        for (name, builtin, schema) in TEMPLATES {
            let (text, origin) = match source(ui.templates_dir.as_deref(), name) {
                Ok(Some((text, path))) => (text, path),
                Ok(None) => (builtin.to_string(), format!("built-in {name}")),
                Err(message) => {
                    errors.push(ThemeError {
                        key: "ui.templates_dir",
                        message,
                    });
                    continue;
                }
            };
            match Template::parse(&text, schema) {
                Ok(template) => parsed.push(template),
                Err(e) => errors.push(ThemeError {
                    key: "ui.templates_dir",
                    message: format!("{origin}: {e}"),
                }),
            }
        }
        let logo = match ui.logo.as_deref().map(read_logo).transpose() {
            Ok(logo) => logo,
            Err(message) => {
                errors.push(ThemeError {
                    key: "ui.logo",
                    message,
                });
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut parsed = parsed.into_iter();
        let mut next = || parsed.next().unwrap_or_else(|| unreachable!("one per TEMPLATES entry"));
        let (layout, chooser, logout, signed_out) = (next(), next(), next(), next());
        let (denied, login_failed, error, style) = (next(), next(), next(), next());
        let style = style.render(&vec![("accent_color", Value::Text(ui.accent_color.clone()))]);
        let style_version = Sha256::digest(style.as_bytes())[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            layout,
            chooser,
            logout,
            signed_out,
            denied,
            login_failed,
            error,
            style: bytes::Bytes::from(style),
            style_version,
            logo,
        })
    }

    /// The stylesheet, with the accent colour in place.
    pub fn style(&self) -> bytes::Bytes {
        self.style.clone()
    }

    /// A short digest of the stylesheet, so a changed one is fetched anew.
    pub fn style_version(&self) -> &str {
        &self.style_version
    }

    pub fn logo(&self) -> Option<&Logo> {
        self.logo.as_ref()
    }
}

/// The operator's copy of `name`, when `dir` has one.
fn source(dir: Option<&Path>, name: &str) -> Result<Option<(String, String)>, String> {
    let Some(dir) = dir else { return Ok(None) };
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((text, path.display().to_string()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn read_logo(path: &Path) -> Result<Logo, String> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let content_type = match extension.as_str() {
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        _ => {
            return Err(format!(
                "{}: use a .png, .svg, .jpg, .webp or .gif file",
                path.display()
            ))
        }
    };
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .len();
    if size > MAX_LOGO_BYTES {
        return Err(format!(
            "{} is {size} bytes; a logo may have at most {MAX_LOGO_BYTES}",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Logo {
        bytes: bytes.into(),
        content_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temp dir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        dir
    }

    #[test]
    fn built_in_templates_load_and_the_accent_reaches_the_stylesheet() {
        let ui = UiConfig {
            accent_color: "#ff0066".into(),
            ..UiConfig::default()
        };
        let theme = Theme::load(&ui).map_err(|e| format!("{e:?}")).expect("loads");
        assert!(String::from_utf8_lossy(&theme.style()).contains("--accent: #ff0066;"));
        assert!(theme.logo().is_none());
    }

    #[test]
    fn an_operator_template_replaces_the_built_in_one() {
        let dir = dir_with(&[(
            "signed_out.html",
            "<p>Bye from {{title}}. <a href=\"{{login_url}}\">Again</a></p>",
        )]);
        let ui = UiConfig {
            templates_dir: Some(dir.path().to_path_buf()),
            ..UiConfig::default()
        };
        let theme = Theme::load(&ui).map_err(|e| format!("{e:?}")).expect("loads");
        let out = theme.signed_out.render(&vec![
            ("title", Value::Text("A&B".into())),
            ("login_url", Value::Text("/l".into())),
        ]);
        assert_eq!(out, "<p>Bye from A&amp;B. <a href=\"/l\">Again</a></p>");
    }

    #[test]
    fn broken_templates_and_logos_are_all_reported_with_file_and_line() {
        let dir = dir_with(&[
            ("denied.html", "<p>\n{{user}} {{reason}}</p>"),
            ("chooser.html", "{{#each providers}}"),
            ("logo.bmp", "x"),
        ]);
        let ui = UiConfig {
            templates_dir: Some(dir.path().to_path_buf()),
            logo: Some(dir.path().join("logo.bmp")),
            ..UiConfig::default()
        };
        let errors = Theme::load(&ui).err().expect("refused");
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 3, "{text:?}");
        assert!(
            text[0].contains("chooser.html: line 1: `{{#each}}` is never closed"),
            "{text:?}"
        );
        assert!(
            text[1].contains("denied.html: line 2: `reason` is not a variable"),
            "{text:?}"
        );
        assert!(text[2].starts_with("ui.logo: ") && text[2].contains(".png"), "{text:?}");
    }

    #[test]
    fn a_logo_is_read_with_its_type_and_bounded() {
        let dir = dir_with(&[("logo.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>")]);
        let ui = UiConfig {
            logo: Some(dir.path().join("logo.svg")),
            ..UiConfig::default()
        };
        let theme = Theme::load(&ui).map_err(|e| format!("{e:?}")).expect("loads");
        assert_eq!(theme.logo().map(|l| l.content_type), Some("image/svg+xml"));
        let big = dir.path().join("big.png");
        std::fs::write(&big, vec![0u8; 600 * 1024]).expect("write");
        let ui = UiConfig {
            logo: Some(big),
            ..UiConfig::default()
        };
        let errors = Theme::load(&ui).err().expect("refused");
        assert!(errors[0].message.contains("at most 524288"), "{errors:?}");
    }
}
