//! The source tree's shape, checked: no module imports another that imports it back, directly
//! or around a loop, in any of marmot's crates.
//!
//! A module's imports are the paths it names from `crate::`, `super::` or `self::` (in `use`
//! items, nested groups included, and in expressions), each resolved to the longest module
//! it names. A parent naming its own submodules is not counted (declaring and re-exporting
//! them is what a parent does); a submodule naming its parent is. Test modules
//! (`#[cfg(test)] mod tests` to the end of a file) are left out.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[test]
fn no_module_imports_one_that_imports_it_back() {
    // MARMOT_SOURCE_ROOT checks another checkout (an older commit's, to see what it finds).
    let root = match std::env::var_os("MARMOT_SOURCE_ROOT") {
        Some(root) => PathBuf::from(root),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_owned(),
    };
    let mut found = vec![];
    for krate in ["daemon", "ctl", "proto", "certs", "tests"] {
        let src = root.join(krate).join("src");
        let graph = Graph::read(&src);
        assert!(graph.modules.len() > 3 || krate == "tests", "{krate}: too few modules read");
        for circle in graph.circles() {
            found.push(format!("{krate}: {}", circle.join(" -> ")));
        }
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn a_circle_is_found_and_a_parent_naming_its_children_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "pub mod a;\npub mod b;\npub mod c;\nuse a::X;\n");
    write("a/mod.rs", "pub mod inner;\nuse self::inner::Y;\nuse crate::{b::{self, Z}};\n");
    write("a/inner.rs", "use super::super::c::W; // crate::b::Q in a comment\n");
    write("b.rs", "fn f() { crate::c::go(); }\n#[cfg(test)]\nmod tests { use crate::a::X; }\n");
    write("c.rs", "use crate::a::inner::Y;\nuse crate::a::X;\n");
    let graph = Graph::read(dir.path());
    assert_eq!(graph.modules.len(), 5);
    assert_eq!(graph.edges["a"], BTreeSet::from(["b".to_string()]), "a child is not counted");
    assert_eq!(graph.edges["a::inner"], BTreeSet::from(["c".to_string()]));
    assert!(graph.edges["b"].contains("c") && !graph.edges["b"].contains("a"), "tests left out");
    let circles: Vec<BTreeSet<String>> =
        graph.circles().into_iter().map(|c| c.into_iter().collect()).collect();
    let all = ["a", "a::inner", "b", "c"].map(String::from);
    assert_eq!(circles, [BTreeSet::from(all)], "a -> b -> c -> a, and c <-> a::inner");
}

/// Modules by path (`coordinator::driver`; the crate root is ``) and what each imports.
struct Graph {
    modules: BTreeMap<String, PathBuf>,
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn read(src: &Path) -> Graph {
        let mut modules = BTreeMap::new();
        for file in rust_files(src) {
            let rel = file.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> =
                rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                parts.pop();
            }
            // Binaries under src/bin are crates of their own.
            if parts.first().is_some_and(|p| p == "bin") {
                continue;
            }
            modules.insert(parts.join("::"), file);
        }
        let mut edges = BTreeMap::new();
        for (module, file) in &modules {
            let text = without_tests(&without_comments(&std::fs::read_to_string(file).unwrap()));
            let mut targets = BTreeSet::new();
            for path in paths(&text) {
                if let Some(target) = resolve(&modules, module, &path) {
                    // A parent's own submodules, and the root's (every module), are not counted.
                    let own = target == *module
                        || module.is_empty()
                        || target.starts_with(&format!("{module}::"));
                    if !own {
                        targets.insert(target);
                    }
                }
            }
            edges.insert(module.clone(), targets);
        }
        Graph { modules, edges }
    }

    /// Every set of modules that import each other around a loop (Tarjan's strongly
    /// connected components of more than one module), each sorted.
    fn circles(&self) -> Vec<Vec<String>> {
        struct Walk<'a> {
            graph: &'a Graph,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            found: Vec<Vec<String>>,
        }
        impl<'a> Walk<'a> {
            fn visit(&mut self, v: &'a str) {
                let n = self.index.len();
                self.index.insert(v, n);
                self.low.insert(v, n);
                self.stack.push(v);
                for w in &self.graph.edges[v] {
                    let w = w.as_str();
                    if !self.index.contains_key(w) {
                        self.visit(w);
                        let low = self.low[v].min(self.low[w]);
                        self.low.insert(v, low);
                    } else if self.stack.contains(&w) {
                        let low = self.low[v].min(self.index[w]);
                        self.low.insert(v, low);
                    }
                }
                if self.low[v] == self.index[v] {
                    let mut component = vec![];
                    while let Some(w) = self.stack.pop() {
                        component.push(w.to_string());
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        component.reverse();
                        self.found.push(component);
                    }
                }
            }
        }
        let mut walk = Walk {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: vec![],
            found: vec![],
        };
        for module in self.modules.keys() {
            if !walk.index.contains_key(module.as_str()) {
                walk.visit(module);
            }
        }
        walk.found
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The text with `//` comments (doc comments too) and `/* */` blocks blanked.
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            rest = &rest[end..];
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            rest = &rest[end..];
        } else if rest.starts_with('"') {
            // A string's contents are not code.
            let mut end = 1;
            let bytes = rest.as_bytes();
            while end < bytes.len() && bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            rest = rest.get(end + 1..).unwrap_or("");
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The text up to its test module.
fn without_tests(text: &str) -> String {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].to_string(),
        None => text.to_string(),
    }
}

/// Every path the text names from `crate::`, `super::` or `self::`, with `use` groups
/// expanded (`crate::a::{b, c::{self, d}}` names `crate::a::b`, `crate::a::c` and
/// `crate::a::c::d`).
fn paths(text: &str) -> Vec<Vec<String>> {
    let mut found = vec![];
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        // By bytes: `at` may fall inside a character that is not ASCII.
        let starts =
            ["crate::", "super::", "self::"].iter().any(|p| bytes[at..].starts_with(p.as_bytes()));
        let boundary = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let after_colons = at >= 2 && &bytes[at - 2..at] == b"::";
        if starts && boundary && !after_colons {
            let (paths, end) = path_at(text, at, vec![]);
            found.extend(paths);
            at = end.max(at + 1);
        } else {
            at += 1;
        }
    }
    found
}

/// The paths of a path expression starting at `at` (after `prefix`), and where it ends.
fn path_at(text: &str, mut at: usize, prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let bytes = text.as_bytes();
    let mut path = prefix;
    loop {
        let start = at;
        while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
            at += 1;
        }
        if at > start {
            path.push(text[start..at].to_string());
        }
        if text[at..].starts_with("::{") {
            // A group: each item is a path of its own under this one (`self` is this one).
            let mut found = vec![];
            at += 3;
            loop {
                while at < bytes.len() && (bytes[at] as char).is_whitespace() {
                    at += 1;
                }
                if at >= bytes.len() || bytes[at] == b'}' {
                    return (found, at + 1);
                }
                let (items, end) = path_at(text, at, path.clone());
                found.extend(items.into_iter().map(|mut p| {
                    if p.last().is_some_and(|s| s == "self") {
                        p.pop();
                    }
                    p
                }));
                at = end;
                while at < bytes.len() && bytes[at] != b',' && bytes[at] != b'}' {
                    at += 1; // ` as name`
                }
                if at < bytes.len() && bytes[at] == b',' {
                    at += 1;
                }
            }
        }
        if text[at..].starts_with("::") {
            at += 2;
            continue;
        }
        return (vec![path], at);
    }
}

/// The module a path names: the longest module its segments lead to from `module`.
fn resolve(modules: &BTreeMap<String, PathBuf>, module: &str, path: &[String]) -> Option<String> {
    let mut base: Vec<&str> = match path.first().map(String::as_str) {
        Some("crate") => vec![],
        _ if module.is_empty() => vec![],
        _ => module.split("::").collect(),
    };
    let mut rest = path.iter().map(String::as_str).peekable();
    if rest.peek() == Some(&"crate") {
        rest.next();
    }
    while let Some(&seg) = rest.peek() {
        match seg {
            "super" => {
                base.pop();
            }
            "self" => {}
            _ => break,
        }
        rest.next();
    }
    let full: Vec<&str> = base.into_iter().chain(rest).collect();
    (0..=full.len())
        .rev()
        .map(|n| full[..n].join("::"))
        .find(|candidate| modules.contains_key(candidate))
}
