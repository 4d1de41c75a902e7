//! A small reader of a Rust source tree's module imports: which module each
//! file is, which modules its code (not its tests) names through `crate::`,
//! `super::` and `self::` paths, and the import circles between siblings.
//! Text only, no parser crate: `use` trees are expanded, comments and
//! string literals are skipped, `#[cfg(test)]` modules are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module path, `[]` for the crate root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ModulePath(pub Vec<String>);

impl ModulePath {
    pub fn parse(text: &str) -> Self {
        Self(text.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect())
    }

    fn starts_with(&self, prefix: &ModulePath) -> bool {
        self.0.len() >= prefix.0.len() && self.0[..prefix.0.len()] == prefix.0[..]
    }
}

impl std::fmt::Display for ModulePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("crate");
        }
        f.write_str(&self.0.join("::"))
    }
}

/// One source file as the rules see it.
pub struct SourceFile {
    pub path: String,
    pub module: ModulePath,
    pub lines: usize,
    /// Test code: a module declared under `#[cfg(test)]`, or inside one.
    pub is_test: bool,
    /// Modules named by the file's non-test code.
    imports: BTreeSet<ModulePath>,
}

pub struct SourceTree {
    files: Vec<SourceFile>,
}

impl SourceTree {
    /// Reads every `.rs` file below `root` (the crate's `src/`), except the
    /// binary's `main.rs`, which is another crate.
    pub fn read(root: impl AsRef<Path>) -> std::io::Result<Self> {
        let root = root.as_ref();
        let mut paths = Vec::new();
        collect(root, &mut paths)?;
        let mut texts = Vec::new();
        for path in paths {
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if relative == "main.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&path)?;
            texts.push((relative, text));
        }
        let modules: Vec<ModulePath> = texts.iter().map(|(path, _)| module_of(path)).collect();
        let mut test_roots = BTreeSet::new();
        let mut test_files = BTreeSet::new();
        for ((path, text), module) in texts.iter().zip(&modules) {
            for test in test_modules(text) {
                match test {
                    TestModule::Named(name) => test_roots.insert(child_of(module, &name)),
                    // `#[path]` is relative to the declaring file's folder.
                    TestModule::File(file) => test_files.insert(match path.rsplit_once('/') {
                        Some((folder, _)) => format!("{folder}/{file}"),
                        None => file,
                    }),
                };
            }
        }
        let known: BTreeSet<ModulePath> = modules.iter().cloned().collect();
        let files = texts
            .into_iter()
            .zip(modules)
            .map(|((path, text), module)| {
                let code = without_comments_and_strings(&text);
                let code = without_inline_test_modules(&code);
                let imports = named_modules(&code, &module, &known);
                SourceFile {
                    lines: text.lines().count(),
                    is_test: test_files.contains(&path) || test_roots.iter().any(|root| module.starts_with(root)),
                    path,
                    module,
                    imports,
                }
            })
            .collect();
        Ok(Self { files })
    }

    pub fn files(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.iter()
    }

    fn code_files(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.iter().filter(|f| !f.is_test)
    }

    /// Each (file, module) where code inside `from` names a module inside `to`.
    pub fn imports_between(&self, from: &ModulePath, to: &ModulePath) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for file in self.code_files().filter(|f| f.module.starts_with(from)) {
            for target in file.imports.iter().filter(|t| t.starts_with(to)) {
                found.push((file.path.clone(), target.to_string()));
            }
        }
        found
    }

    /// The top-level rooms that code inside `room` names, itself aside.
    pub fn rooms_imported_by(&self, room: &str) -> BTreeSet<String> {
        let from = ModulePath::parse(room);
        self.code_files()
            .filter(|f| f.module.starts_with(&from))
            .flat_map(|f| f.imports.iter())
            .filter_map(|t| t.0.first().cloned())
            .filter(|first| first != room)
            .collect()
    }

    /// Circles of imports between modules of one parent: an import from
    /// `a::x` to `b::y` is one from `a` to `b` among the root's children.
    /// A parent and its own children do not count (they nest).
    pub fn sibling_cycles(&self) -> Vec<Vec<String>> {
        let mut graph: BTreeMap<ModulePath, BTreeSet<ModulePath>> = BTreeMap::new();
        for file in self.code_files() {
            for target in &file.imports {
                let (a, b) = (&file.module.0, &target.0);
                let shared = a.iter().zip(b).take_while(|(x, y)| x == y).count();
                if shared < a.len() && shared < b.len() {
                    let from = ModulePath(a[..=shared].to_vec());
                    let to = ModulePath(b[..=shared].to_vec());
                    graph.entry(to.clone()).or_default();
                    graph.entry(from).or_default().insert(to);
                }
            }
        }
        strongly_connected(&graph)
            .into_iter()
            .filter(|component| component.len() > 1)
            .map(|component| component.iter().map(ToString::to_string).collect())
            .collect()
    }
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}

/// `a/b.rs` and `a/b/mod.rs` are `a::b`; `lib.rs` is the root.
fn module_of(relative: &str) -> ModulePath {
    let mut parts: Vec<String> = relative
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    ModulePath(parts)
}

fn child_of(parent: &ModulePath, name: &str) -> ModulePath {
    let mut path = parent.0.clone();
    path.push(name.to_string());
    ModulePath(path)
}

/// A module declared right under `#[cfg(test)]`: by name (`mod tests;`),
/// or by file (`#[path = "x_tests.rs"] mod tests;`).
enum TestModule {
    Named(String),
    File(String),
}

fn test_modules(text: &str) -> Vec<TestModule> {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if *line != "#[cfg(test)]" {
            continue;
        }
        let mut next = i + 1;
        let mut file = None;
        if let Some(attr) = lines.get(next).and_then(|l| l.strip_prefix("#[path = \"")) {
            file = attr.strip_suffix("\"]").map(str::to_string);
            next += 1;
        }
        let Some(declaration) = lines.get(next) else { continue };
        let rest = declaration.strip_prefix("pub ").unwrap_or(declaration);
        let rest = rest.strip_prefix("pub(crate) ").unwrap_or(rest);
        let Some(name) = rest.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) else {
            continue;
        };
        found.push(match file {
            Some(file) => TestModule::File(file),
            None => TestModule::Named(name.trim().to_string()),
        });
    }
    found
}

/// The text with comments blanked and string and char literals emptied, so
/// doc links and URLs are not read as paths and braces in strings do not
/// count.
fn without_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && matches!(next, Some('#' | '"')) && !is_ident(chars.get(i.wrapping_sub(1)).copied()) {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            i += 2 + hashes;
            while i < chars.len() {
                if chars[i] == '"' && chars[i + 1..].iter().take(hashes).filter(|&&h| h == '#').count() == hashes {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && (chars.get(i + 2) == Some(&'\'') || next == Some('\\')) {
            // A char literal ('{', '\''), not a lifetime.
            i += if next == Some('\\') { 2 } else { 1 };
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Cuts every `#[cfg(test)] mod NAME { ... }` out of the code.
fn without_inline_test_modules(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let head = after.trim_start();
        let is_inline_mod =
            head.starts_with("mod ") && head.find('{').is_some_and(|b| head.find(';').is_none_or(|s| b < s));
        if !is_inline_mod {
            rest = after;
            continue;
        }
        let open = after.find('{').unwrap_or(0);
        let mut depth = 0usize;
        let mut end = after.len();
        for (offset, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + offset + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Every module the code names: the paths of `use` trees, and `crate::…`
/// or `super::…` paths written inline, each resolved to the longest known
/// module it begins with.
fn named_modules(code: &str, me: &ModulePath, known: &BTreeSet<ModulePath>) -> BTreeSet<ModulePath> {
    let mut paths: Vec<Vec<String>> = Vec::new();
    for statement in use_statements(code) {
        expand_use_tree(&statement, &mut Vec::new(), &mut paths);
    }
    paths.extend(inline_paths(code));
    paths
        .into_iter()
        .filter_map(|segments| absolute(&segments, me))
        .filter_map(|target| longest_known(&target, known))
        .filter(|target| target != me && !target.0.is_empty())
        .collect()
}

fn use_statements(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(at) = code[from..].find("use ") {
        let start = from + at;
        from = start + 4;
        let before = start.checked_sub(1).map(|b| bytes[b] as char);
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(end) = code[from..].find(';') {
            found.push(code[from..from + end].split_whitespace().collect::<Vec<_>>().join(" "));
            from += end;
        }
    }
    found
}

/// `a::{b, c::{d, self}}` into `a::b`, `a::c::d`, `a::c`.
fn expand_use_tree(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim().trim_start_matches("::");
    let Some(brace) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree).replace(' ', "");
        let mut full = prefix.clone();
        full.extend(
            path.split("::")
                .filter(|s| !s.is_empty() && *s != "*" && *s != "self")
                .map(str::to_string),
        );
        out.push(full);
        return;
    };
    let head = tree[..brace].replace(' ', "");
    let inner = tree[brace + 1..].trim_end();
    let inner = inner.strip_suffix('}').unwrap_or(inner);
    let added: Vec<String> = head.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect();
    prefix.extend(added.iter().cloned());
    for part in split_top_level(inner) {
        expand_use_tree(part, prefix, out);
    }
    prefix.truncate(prefix.len() - added.len());
}

fn split_top_level(list: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// `crate::a::b` and `super::x` written in expressions and types.
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for root in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(root) {
            let start = from + at;
            from = start + root.len();
            if start > 0 && is_ident(code[..start].chars().last()) {
                continue;
            }
            let tail: String = code[start..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            found.push(tail.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect());
        }
    }
    found
}

/// A path as seen from module `me`, made absolute; `None` for paths into
/// other crates.
fn absolute(segments: &[String], me: &ModulePath) -> Option<ModulePath> {
    let mut iter = segments.iter().peekable();
    let mut base = match iter.peek().map(|s| s.as_str()) {
        Some("crate") => {
            iter.next();
            Vec::new()
        }
        Some("super") => me.0.clone(),
        Some("self") => {
            iter.next();
            me.0.clone()
        }
        _ => return None,
    };
    while iter.peek().map(|s| s.as_str()) == Some("super") {
        iter.next();
        base.pop()?;
    }
    base.extend(iter.cloned());
    Some(ModulePath(base))
}

fn longest_known(target: &ModulePath, known: &BTreeSet<ModulePath>) -> Option<ModulePath> {
    (0..=target.0.len())
        .rev()
        .map(|n| ModulePath(target.0[..n].to_vec()))
        .find(|candidate| known.contains(candidate))
}

/// Tarjan's strongly connected components.
fn strongly_connected(graph: &BTreeMap<ModulePath, BTreeSet<ModulePath>>) -> Vec<Vec<ModulePath>> {
    struct State<'g> {
        graph: &'g BTreeMap<ModulePath, BTreeSet<ModulePath>>,
        index: BTreeMap<&'g ModulePath, usize>,
        low: BTreeMap<&'g ModulePath, usize>,
        stack: Vec<&'g ModulePath>,
        on_stack: BTreeSet<&'g ModulePath>,
        components: Vec<Vec<ModulePath>>,
    }
    fn visit<'g>(state: &mut State<'g>, node: &'g ModulePath) {
        let n = state.index.len();
        state.index.insert(node, n);
        state.low.insert(node, n);
        state.stack.push(node);
        state.on_stack.insert(node);
        for next in state.graph.get(node).into_iter().flatten() {
            if !state.index.contains_key(next) {
                visit(state, next);
                let low = state.low[next].min(state.low[node]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(next) {
                let low = state.index[next].min(state.low[node]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(top) = state.stack.pop() {
                state.on_stack.remove(top);
                component.push(top.clone());
                if top == node {
                    break;
                }
            }
            state.components.push(component);
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.components
}
