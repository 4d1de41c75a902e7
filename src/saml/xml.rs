//! Small, careful XML helpers for attacker-supplied SAML: refusing DTDs
//! before any parser sees them, counting elements by local name whatever
//! their prefix (two Assertions is a wrapping attack), reading the few
//! attributes samael's structs do not keep, and escaping what we write.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::SamlError;

/// Refuses a document type declaration (and so every entity): SAML never
/// needs one, and a DTD is how XXE and entity expansion attacks begin.
/// Input in (or declaring) another encoding than UTF-8 is refused first:
/// this scan reads UTF-8, and what it passed must be what the parser reads.
pub fn refuse_dtd(xml: &str) -> Result<(), SamlError> {
    refuse_foreign_encoding(xml.as_bytes())?;
    let lower = xml.to_ascii_lowercase();
    if lower.contains("<!doctype") || lower.contains("<!entity") {
        return Err(SamlError::Doctype);
    }
    Ok(())
}

/// Refuses a document that is not plainly UTF-8: a UTF-16 or UTF-32 byte
/// order mark, a NUL (never XML, and how a parser spots UTF-16 without a
/// mark), or an XML declaration naming another encoding. In UTF-7
/// `+ADw-!DOCTYPE` is `<!DOCTYPE`: a text scan in UTF-8 sees no DTD where a
/// parser that honours the declaration (libxml2, under the signature
/// check) reads one.
pub fn refuse_foreign_encoding(xml: &[u8]) -> Result<(), SamlError> {
    for (mark, name) in [(&[0xFE, 0xFF][..], "UTF-16BE"), (&[0xFF, 0xFE][..], "UTF-16LE")] {
        if xml.starts_with(mark) {
            return Err(SamlError::Encoding(format!("{name} byte order mark")));
        }
    }
    if xml.contains(&0) {
        return Err(SamlError::Encoding("NUL bytes (UTF-16 or UTF-32)".into()));
    }
    // Every `<?xml` declaration, wherever it stands: one is only allowed
    // first, but a lenient parser may take a later one.
    let mut rest = xml;
    while let Some(at) = find_ascii_ci(rest, b"<?xml") {
        let after = &rest[at + 5..];
        rest = after;
        if !after.first().is_none_or(|b| b.is_ascii_whitespace() || *b == b'?') {
            continue; // another processing instruction (`<?xml-stylesheet`)
        }
        let end = find_ascii_ci(after, b"?>").unwrap_or(after.len());
        if let Some(encoding) = declared_encoding(&after[..end])? {
            if !encoding.eq_ignore_ascii_case(b"utf-8") {
                let shown: String = String::from_utf8_lossy(encoding).chars().take(40).collect();
                return Err(SamlError::Encoding(format!("declared `{shown}`")));
            }
        }
    }
    Ok(())
}

/// The value of an XML declaration's `encoding` pseudo-attribute, if it
/// has one; an `encoding` that cannot be read is refused.
fn declared_encoding(declaration: &[u8]) -> Result<Option<&[u8]>, SamlError> {
    let Some(at) = find_ascii_ci(declaration, b"encoding") else {
        return Ok(None);
    };
    let unreadable = || SamlError::Encoding("an unreadable encoding declaration".into());
    let value = declaration[at + 8..].trim_ascii_start();
    let value = value.strip_prefix(b"=").ok_or_else(unreadable)?.trim_ascii_start();
    let (&quote, value) = value.split_first().ok_or_else(unreadable)?;
    if quote != b'"' && quote != b'\'' {
        return Err(unreadable());
    }
    let close = value.iter().position(|&b| b == quote).ok_or_else(unreadable)?;
    Ok(Some(&value[..close]))
}

/// Where `needle` (ASCII) first occurs in `haystack`, ignoring ASCII case.
fn find_ascii_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
}

/// The local part of a (possibly prefixed) element name.
pub(super) fn local(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|b| *b == b':') {
        Some(colon) => &name[colon + 1..],
        None => name,
    }
}

/// How many elements with this local name the document has, anywhere
/// (inside Extensions, Object, Advice...). Fails on malformed XML.
pub fn count_elements(xml: &str, name: &str) -> Result<usize, SamlError> {
    let mut reader = Reader::from_str(xml);
    let mut count = 0;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) if local(e.name().as_ref()) == name.as_bytes() => count += 1,
            Ok(Event::Eof) => return Ok(count),
            Ok(Event::DocType(_)) => return Err(SamlError::Doctype),
            Ok(_) => {}
            Err(e) => return Err(SamlError::Malformed(format!("not well-formed XML: {e}"))),
        }
    }
}

/// The local name of the document's root element.
pub fn root_name(xml: &str) -> Result<String, SamlError> {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                return Ok(String::from_utf8_lossy(local(e.name().as_ref())).into_owned());
            }
            Ok(Event::Eof) => return Err(SamlError::Malformed("no root element".into())),
            Ok(Event::DocType(_)) => return Err(SamlError::Doctype),
            Ok(_) => {}
            Err(e) => return Err(SamlError::Malformed(format!("not well-formed XML: {e}"))),
        }
    }
}

/// The attributes (by local name, unescaped) and text of the first element
/// with local name `name`, if any.
pub fn first_element(xml: &str, name: &str) -> Result<Option<Element>, SamlError> {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if local(e.name().as_ref()) == name.as_bytes() => {
                let attributes = attributes(&e)?;
                let text = content(&mut reader)?;
                return Ok(Some(Element { attributes, text }));
            }
            Ok(Event::Empty(e)) if local(e.name().as_ref()) == name.as_bytes() => {
                return Ok(Some(Element {
                    attributes: attributes(&e)?,
                    text: String::new(),
                }));
            }
            Ok(Event::Eof) => return Ok(None),
            Ok(Event::DocType(_)) => return Err(SamlError::Doctype),
            Ok(_) => {}
            Err(e) => return Err(SamlError::Malformed(format!("not well-formed XML: {e}"))),
        }
    }
}

/// The document without its first element of local name `name` (and all
/// inside it): how the envelope of a Response with an EncryptedAssertion
/// is read, since samael's structs do not model every IdP's encryption
/// markup (that part is read by `decrypt`).
pub fn without_element(xml: &str, name: &str) -> Result<String, SamlError> {
    let mut reader = Reader::from_str(xml);
    let mut start = None;
    let mut depth = 0usize;
    let cut = |from: u64, to: u64| -> Result<String, SamlError> {
        let (from, to) = (usize::try_from(from), usize::try_from(to));
        match (from, to) {
            (Ok(from), Ok(to)) if from <= to && to <= xml.len() => Ok(format!("{}{}", &xml[..from], &xml[to..])),
            _ => Err(SamlError::Malformed("element bounds".into())),
        }
    };
    loop {
        let before = reader.buffer_position();
        match reader.read_event() {
            Ok(Event::Empty(e)) if start.is_none() && local(e.name().as_ref()) == name.as_bytes() => {
                return cut(before, reader.buffer_position());
            }
            Ok(Event::Start(e)) if start.is_none() && local(e.name().as_ref()) == name.as_bytes() => {
                start = Some(before);
                depth = 1;
            }
            Ok(Event::Start(_)) if start.is_some() => depth += 1,
            Ok(Event::End(_)) if start.is_some() => {
                depth -= 1;
                if let (0, Some(from)) = (depth, start) {
                    return cut(from, reader.buffer_position());
                }
            }
            Ok(Event::Eof) if start.is_none() => return Ok(xml.to_string()),
            Ok(Event::Eof) => return Err(SamlError::Malformed("unterminated element".into())),
            Ok(Event::DocType(_)) => return Err(SamlError::Doctype),
            Ok(_) => {}
            Err(e) => return Err(SamlError::Malformed(format!("not well-formed XML: {e}"))),
        }
    }
}

/// Texts of every element with local name `name`.
pub fn all_texts(xml: &str, name: &str) -> Result<Vec<String>, SamlError> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if local(e.name().as_ref()) == name.as_bytes() => out.push(content(&mut reader)?),
            Ok(Event::Eof) => return Ok(out),
            Ok(Event::DocType(_)) => return Err(SamlError::Doctype),
            Ok(_) => {}
            Err(e) => return Err(SamlError::Malformed(format!("not well-formed XML: {e}"))),
        }
    }
}

/// The text of the element just opened, up to its end: text and CDATA
/// joined, references resolved, comments skipped (so a comment cannot cut
/// a value short), child elements' text included.
pub(super) fn content(reader: &mut Reader<&[u8]>) -> Result<String, SamlError> {
    let bad = |e: &dyn std::fmt::Display| SamlError::Malformed(format!("element text: {e}"));
    let mut out = String::new();
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Text(t)) => out.push_str(&t.decode().map_err(|e| bad(&e))?),
            Ok(Event::CData(c)) => out.push_str(&c.decode().map_err(|e| bad(&e))?),
            Ok(Event::GeneralRef(r)) => match r.resolve_char_ref().map_err(|e| bad(&e))? {
                Some(ch) => out.push(ch),
                None => out.push(match r.decode().map_err(|e| bad(&e))?.as_ref() {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    other => return Err(SamlError::Malformed(format!("unknown entity `{other}`"))),
                }),
            },
            Ok(Event::Start(_)) => depth += 1,
            Ok(Event::End(_)) if depth == 0 => return Ok(out.trim().to_string()),
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Eof) => return Err(SamlError::Malformed("unterminated element".into())),
            Ok(Event::DocType(_)) => return Err(SamlError::Doctype),
            Ok(_) => {}
            Err(e) => return Err(bad(&e)),
        }
    }
}

/// One element as read by [`first_element`].
#[derive(Debug, Clone, Default)]
pub struct Element {
    pub attributes: Vec<(String, String)>,
    pub text: String,
}

impl Element {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

pub(super) fn attributes(e: &BytesStart<'_>) -> Result<Vec<(String, String)>, SamlError> {
    let mut out = Vec::new();
    for attribute in e.attributes() {
        let attribute = attribute.map_err(|e| SamlError::Malformed(format!("attribute: {e}")))?;
        let key = String::from_utf8_lossy(local(attribute.key.as_ref())).into_owned();
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| SamlError::Malformed(format!("attribute value: {e}")))?
            .into_owned();
        out.push((key, value));
    }
    Ok(out)
}

/// Escapes text for an XML attribute value or element content.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtds_and_entities_are_refused_in_any_case() {
        assert_eq!(
            refuse_dtd("<!DOCTYPE x [<!ENTITY e 'v'>]><x/>"),
            Err(SamlError::Doctype)
        );
        assert_eq!(refuse_dtd("<x/><!doctype y>"), Err(SamlError::Doctype));
        assert!(refuse_dtd("<x>no dtd</x>").is_ok());
    }

    #[test]
    fn only_utf8_is_read() {
        let utf7 = "<?xml version=\"1.0\" encoding=\"UTF-7\"?>+ADw-!DOCTYPE x+AD4-<x/>";
        assert_eq!(refuse_dtd(utf7), Err(SamlError::Encoding("declared `UTF-7`".into())));
        for (xml, shown) in [
            ("<?xml version='1.0' encoding = 'utf-16'?><x/>", "declared `utf-16`"),
            (
                "<?XML version=\"1.0\" ENCODING=\"ISO-8859-1\"?><x/>",
                "declared `ISO-8859-1`",
            ),
            ("<?xml version=\"1.0\" encoding=\"UTF8\"?><x/>", "declared `UTF8`"),
            ("<x/><?xml version=\"1.0\" encoding=\"UTF-7\"?>", "declared `UTF-7`"),
            (
                "<?xml version=\"1.0\" encoding=UTF-7?><x/>",
                "an unreadable encoding declaration",
            ),
            (
                "<?xml version=\"1.0\" encoding=\"UTF-7?><x/>",
                "an unreadable encoding declaration",
            ),
            ("<\0x\0/\0>\0", "NUL bytes (UTF-16 or UTF-32)"),
        ] {
            assert_eq!(refuse_dtd(xml), Err(SamlError::Encoding(shown.into())), "{xml}");
        }
        assert_eq!(
            refuse_foreign_encoding(b"\xFF\xFE<\0x\0/\0>\0"),
            Err(SamlError::Encoding("UTF-16LE byte order mark".into()))
        );
        assert_eq!(
            refuse_foreign_encoding(b"\xFE\xFF\0<\0x\0/\0>"),
            Err(SamlError::Encoding("UTF-16BE byte order mark".into()))
        );
        assert!(refuse_dtd("<?xml version=\"1.0\" encoding=\"utf-8\"?><x/>").is_ok());
        assert!(refuse_dtd("\u{FEFF}<?xml version=\"1.0\" encoding='UTF-8' standalone=\"no\"?><x/>").is_ok());
        assert!(refuse_dtd("<?xml version=\"1.0\"?><?xml-stylesheet href=\"a\"?><x encoding=\"UTF-7\"/>").is_ok());
        assert!(refuse_dtd("<x>no declaration</x>").is_ok());
    }

    #[test]
    fn elements_are_counted_by_local_name_whatever_the_prefix() {
        let xml = r#"<samlp:Response xmlns:samlp="p" xmlns:saml="a" xmlns:x="a">
            <saml:Assertion ID="1"/><samlp:Extensions><x:Assertion ID="2"></x:Assertion></samlp:Extensions>
            <AssertionIDRef/></samlp:Response>"#;
        assert_eq!(count_elements(xml, "Assertion"), Ok(2));
        assert_eq!(root_name(xml).as_deref(), Ok("Response"));
        assert!(count_elements("<a><b></a>", "b").is_err());
    }

    #[test]
    fn without_element_cuts_the_first_such_element_whole() {
        let xml = r#"<r><a/><x:E k="1"><E>in</E><b/></x:E><E/></r>"#;
        assert_eq!(without_element(xml, "E").as_deref(), Ok(r#"<r><a/><E/></r>"#));
        assert_eq!(without_element("<r><E/><E/></r>", "E").as_deref(), Ok("<r><E/></r>"));
        assert_eq!(without_element("<r/>", "E").as_deref(), Ok("<r/>"));
        assert!(without_element("<r><E>", "E").is_err());
    }

    #[test]
    fn first_element_reads_attributes_and_unescaped_text() {
        let xml = r#"<a><saml:NameID Format="f" SPNameQualifier="sp&amp;1">alice&amp;co</saml:NameID></a>"#;
        let e = first_element(xml, "NameID").expect("parses").expect("found");
        assert_eq!(e.attribute("Format"), Some("f"));
        assert_eq!(e.attribute("SPNameQualifier"), Some("sp&1"));
        assert_eq!(e.text, "alice&co");
        assert_eq!(escape("<a\"&'>"), "&lt;a&quot;&amp;&apos;&gt;");
    }
}
