//! The small template language of doorward's pages: `{{name}}` (always
//! HTML-escaped), `{{#if name}}…{{else}}…{{/if}}` and
//! `{{#each list}}…{{/each}}`. Nothing else, so an operator's template
//! cannot run code, and every name is checked against the page's documented
//! variables when the template is loaded: a typo is a `doorward check`
//! error, never a blank page at run time.

use std::fmt;

/// A value a page hands its template.
pub enum Value {
    /// Text, escaped wherever it appears.
    Text(String),
    /// Markup doorward rendered itself (a page inside the layout, the
    /// stylesheet link): inserted as is. Never built from user input.
    Html(String),
    /// Items for `{{#each}}`, each with its own names.
    List(Vec<Vars>),
}

/// The names a template is rendered with.
pub type Vars = Vec<(&'static str, Value)>;

/// What a template may name: plain names, and lists with their items' names.
pub struct Schema {
    pub names: &'static [&'static str],
    pub lists: &'static [(&'static str, &'static [&'static str])],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

enum Node {
    Text(String),
    Var(String),
    If(String, Vec<Node>, Vec<Node>),
    Each(String, Vec<Node>),
}

/// A parsed, checked template.
pub struct Template {
    nodes: Vec<Node>,
}

/// Where the parser stands: inside which block, waiting for which end.
enum Open {
    Top,
    If {
        name: String,
        then: Option<Vec<Node>>,
        line: usize,
    },
    Each {
        name: String,
        line: usize,
    },
}

impl Template {
    pub fn parse(text: &str, schema: &Schema) -> Result<Self, TemplateError> {
        let mut stack: Vec<(Open, Vec<Node>)> = vec![(Open::Top, Vec::new())];
        let mut rest = text;
        let mut line = 1;
        let mut items: Option<&'static [&'static str]> = None;
        while let Some(start) = rest.find("{{") {
            let (before, after) = rest.split_at(start);
            push_text(&mut stack, before);
            line += before.matches('\n').count();
            let end = after.find("}}").ok_or_else(|| TemplateError {
                line,
                message: "`{{` is never closed with `}}`".into(),
            })?;
            let tag = after[2..end].trim();
            let err = |message: String| TemplateError { line, message };
            let known = |name: &str, items: Option<&[&str]>| {
                schema.names.contains(&name) || items.is_some_and(|i| i.contains(&name))
            };
            if let Some(name) = tag.strip_prefix("#if ") {
                let name = name.trim();
                let is_list = schema.lists.iter().any(|(l, _)| *l == name);
                if !known(name, items) && !is_list {
                    return Err(err(format!("`{name}` is not a variable of this page")));
                }
                let open = Open::If {
                    name: name.to_string(),
                    then: None,
                    line,
                };
                stack.push((open, Vec::new()));
            } else if let Some(name) = tag.strip_prefix("#each ") {
                let name = name.trim();
                if items.is_some() {
                    return Err(err("`#each` cannot nest".into()));
                }
                let fields = schema.lists.iter().find(|(l, _)| *l == name).map(|(_, f)| *f);
                items = Some(fields.ok_or_else(|| err(format!("`{name}` is not a list of this page")))?);
                stack.push((
                    Open::Each {
                        name: name.to_string(),
                        line,
                    },
                    Vec::new(),
                ));
            } else if tag == "else" {
                match stack.last_mut() {
                    Some((Open::If { then: then @ None, .. }, nodes)) => *then = Some(std::mem::take(nodes)),
                    _ => return Err(err("`{{else}}` outside an `{{#if}}`".into())),
                }
            } else if tag == "/if" || tag == "/each" {
                let Some((open, nodes)) = stack.pop() else {
                    return Err(err(format!("`{{{{{tag}}}}}` closes nothing")));
                };
                let node = match (open, tag) {
                    (Open::If { name, then, .. }, "/if") => match then {
                        Some(then) => Node::If(name, then, nodes),
                        None => Node::If(name, nodes, Vec::new()),
                    },
                    (Open::Each { name, .. }, "/each") => {
                        items = None;
                        Node::Each(name, nodes)
                    }
                    _ => return Err(err(format!("`{{{{{tag}}}}}` closes nothing open"))),
                };
                match stack.last_mut() {
                    Some((_, parent)) => parent.push(node),
                    None => return Err(err(format!("`{{{{{tag}}}}}` closes nothing open"))),
                }
            } else if tag.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !tag.is_empty() {
                if !known(tag, items) {
                    return Err(err(format!("`{tag}` is not a variable of this page")));
                }
                if let Some((_, nodes)) = stack.last_mut() {
                    nodes.push(Node::Var(tag.to_string()));
                }
            } else {
                return Err(err(format!(
                    "`{{{{{tag}}}}}` is not a variable, `#if`, `#each`, `else` or an end"
                )));
            }
            line += after[..end].matches('\n').count();
            rest = &after[end + 2..];
        }
        push_text(&mut stack, rest);
        match stack.pop() {
            Some((Open::Top, nodes)) if stack.is_empty() => Ok(Self { nodes }),
            Some((Open::If { line, .. }, _)) => Err(TemplateError {
                line,
                message: "`{{#if}}` is never closed with `{{/if}}`".into(),
            }),
            Some((Open::Each { line, .. }, _)) => Err(TemplateError {
                line,
                message: "`{{#each}}` is never closed with `{{/each}}`".into(),
            }),
            _ => Err(TemplateError {
                line,
                message: "unbalanced blocks".into(),
            }),
        }
    }

    pub fn render(&self, vars: &Vars) -> String {
        let mut out = String::with_capacity(2048);
        render_nodes(&self.nodes, &[vars], &mut out);
        out
    }
}

fn push_text(stack: &mut [(Open, Vec<Node>)], text: &str) {
    if let (false, Some((_, nodes))) = (text.is_empty(), stack.last_mut()) {
        nodes.push(Node::Text(text.to_string()));
    }
}

/// Looks a name up from the innermost scope (an `#each` item) outwards.
fn lookup<'a>(scopes: &[&'a Vars], name: &str) -> Option<&'a Value> {
    scopes
        .iter()
        .rev()
        .find_map(|vars| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v))
}

fn render_nodes(nodes: &[Node], scopes: &[&Vars], out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Var(name) => match lookup(scopes, name) {
                Some(Value::Text(text)) => out.push_str(&html_escape(text)),
                Some(Value::Html(html)) => out.push_str(html),
                Some(Value::List(_)) | None => {}
            },
            Node::If(name, then, otherwise) => {
                let truthy = match lookup(scopes, name) {
                    Some(Value::Text(t) | Value::Html(t)) => !t.is_empty(),
                    Some(Value::List(items)) => !items.is_empty(),
                    None => false,
                };
                render_nodes(if truthy { then } else { otherwise }, scopes, out);
            }
            Node::Each(name, body) => {
                if let Some(Value::List(items)) = lookup(scopes, name) {
                    for item in items {
                        let mut inner = scopes.to_vec();
                        inner.push(item);
                        render_nodes(body, &inner, out);
                    }
                }
            }
        }
    }
}

/// Escapes text for HTML content and attribute values of either quote
/// kind: every value a template prints goes through here.
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

    const SCHEMA: Schema = Schema {
        names: &["title", "body"],
        lists: &[("items", &["name", "url"])],
    };

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn substitutes_escaped_text_and_raw_markup_ours_only() {
        let t = Template::parse("<h1>{{ title }}</h1>{{body}}", &SCHEMA).expect("parses");
        let out = t.render(&vec![
            ("title", text("<b>&\"'")),
            ("body", Value::Html("<p>ok</p>".into())),
        ]);
        assert_eq!(out, "<h1>&lt;b&gt;&amp;&quot;&#39;</h1><p>ok</p>");
    }

    #[test]
    fn if_else_and_each_with_item_scope() {
        let t = Template::parse(
            "{{#if items}}<ul>{{#each items}}<li><a href=\"{{url}}\">{{name}} {{title}}</a></li>{{/each}}</ul>{{else}}none{{/if}}",
            &SCHEMA,
        )
        .expect("parses");
        let item = |n: &str| vec![("name", text(n)), ("url", text("/x?a=1&b=2"))];
        let out = t.render(&vec![
            ("title", text("T")),
            ("items", Value::List(vec![item("a"), item("<b>")])),
        ]);
        assert_eq!(
            out,
            "<ul><li><a href=\"/x?a=1&amp;b=2\">a T</a></li><li><a href=\"/x?a=1&amp;b=2\">&lt;b&gt; T</a></li></ul>"
        );
        assert_eq!(t.render(&vec![("items", Value::List(vec![]))]), "none");
    }

    #[test]
    fn broken_templates_say_where_and_why() {
        let cases = [
            ("a\n{{titel}}", 2, "`titel` is not a variable"),
            ("{{#if title}}x", 1, "never closed"),
            ("x\n\n{{/if}}", 3, "closes nothing"),
            ("{{#each title}}{{/each}}", 1, "not a list"),
            ("{{name}}", 1, "not a variable"),
            ("{{#each items}}{{/if}}", 1, "closes nothing open"),
            ("{{> partial}}", 1, "is not a variable, `#if`"),
            ("{{title", 1, "never closed"),
            ("{{else}}", 1, "outside an"),
        ];
        for (source, line, says) in cases {
            let e = Template::parse(source, &SCHEMA).err().expect(source);
            assert_eq!(e.line, line, "{source}: {e}");
            assert!(e.message.contains(says), "{source}: {e}");
        }
    }
}
