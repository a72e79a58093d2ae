//! The shape of `src/`, checked: imports only go down.
//!
//! Reads every file of `src/` (not `main.rs`, not test modules), finds
//! every path into the crate it names (`use` items and paths written
//! inline, through `crate::`, `super::`, `self::`, a child module or a name
//! a `use` brought in) and so which file each file imports. Then it
//! fails on:
//! - a circle of imports between files (a parent file importing its child
//!   and the child importing the parent is one);
//! - an import from a module to one of a higher layer (the layers are the
//!   table in `ARCHITECTURE.md`, "Layers"), unless that file pair is listed
//!   there under "Imports that run up";
//! - a file over 600 lines, or a function over 100 lines that is not one
//!   `match` (a table).
//!
//! `cargo test --test layers -- --nocapture` prints the graph's figures.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 100;

/// One source file: its module path and its text with comments, strings
/// and test-only items blanked out.
struct File {
    name: String,
    module: Vec<String>,
    code: String,
}

fn files() -> (Vec<File>, Vec<(String, usize)>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    walk(&root, &mut paths);
    let mut files = Vec::new();
    let mut sizes = Vec::new();
    for path in paths {
        let rel = path.strip_prefix(&root).unwrap();
        let name = rel.to_string_lossy().replace('\\', "/");
        if name == "main.rs" {
            continue;
        }
        let mut module: Vec<String> = name
            .trim_end_matches(".rs")
            .split('/')
            .map(str::to_owned)
            .collect();
        if module == ["lib"] {
            module.clear();
        }
        let text = fs::read_to_string(&path).unwrap();
        sizes.push((name.clone(), text.lines().count()));
        if module.iter().any(|m| m == "tests") {
            continue;
        }
        files.push(File {
            code: without_tests(&blank(&text)),
            name,
            module,
        });
    }
    (files, sizes)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text with comments, string and char literals replaced by spaces
/// (newlines kept, so line numbers hold).
fn blank(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let clear = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = memchr(b'\n', b, i).unwrap_or(b.len());
            clear(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            let mut j = i;
            while j < b.len() {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            clear(&mut out, i, j);
            i = j;
        } else if (rest.starts_with(b"r#") || rest.starts_with(b"r\"") || rest.starts_with(b"br"))
            && !ident_byte(i.checked_sub(1).map_or(b' ', |p| b[p]))
            && raw_string_end(b, i).is_some()
        {
            let end = raw_string_end(b, i).unwrap();
            clear(&mut out, i, end);
            i = end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            clear(&mut out, i, j + 1);
            i = j + 1;
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{..}'), not a lifetime.
            if b.get(i + 1) == Some(&b'\\') {
                let end = memchr(b'\'', b, i + 2).unwrap_or(b.len());
                clear(&mut out, i, end + 1);
                i = end + 1;
            } else {
                let ch = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                if b.get(i + 1 + ch) == Some(&b'\'') {
                    clear(&mut out, i, i + 2 + ch);
                    i += 2 + ch;
                } else {
                    i += 1;
                }
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn raw_string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    if b[i] == b'b' {
        i += 1;
    }
    if b.get(i) != Some(&b'r') {
        return None;
    }
    i += 1;
    let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
    i += hashes;
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let from = i + 1;
    b[from..]
        .windows(close.len())
        .position(|w| w == close.as_slice())
        .map(|p| from + p + close.len())
}

fn memchr(needle: u8, b: &[u8], from: usize) -> Option<usize> {
    b[from..]
        .iter()
        .position(|&c| c == needle)
        .map(|p| from + p)
}

fn ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Blanks each item under `#[cfg(test)]` (up to its `;` or its closing
/// brace): test code may import anything.
fn without_tests(code: &str) -> String {
    let mut out = code.as_bytes().to_vec();
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]") {
        let start = from + at;
        let b = code.as_bytes();
        let mut i = start;
        let mut depth = 0;
        let mut end = b.len();
        while i < b.len() {
            match b[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        for c in &mut out[start..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
    String::from_utf8(out).unwrap()
}

/// The words and `::` of the code, with each word's line.
fn tokens(code: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let b = code.as_bytes();
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if ident_byte(c) {
            let s = i;
            while i < b.len() && ident_byte(b[i]) {
                i += 1;
            }
            out.push((code[s..i].to_owned(), line));
        } else if b[i..].starts_with(b"::") {
            out.push(("::".to_owned(), line));
            i += 2;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else {
            out.push(((c as char).to_string(), line));
            i += 1;
        }
    }
    out
}

/// Expands a `use` tree (tokens between `use` and `;`) into its paths,
/// each with the name it binds.
fn use_paths(toks: &[String]) -> Vec<(Vec<String>, String)> {
    fn tree(
        toks: &[String],
        i: &mut usize,
        prefix: Vec<String>,
        out: &mut Vec<(Vec<String>, String)>,
    ) {
        let mut path = prefix;
        while let Some(t) = toks.get(*i) {
            match t.as_str() {
                "::" => *i += 1,
                "{" => {
                    *i += 1;
                    loop {
                        tree(toks, i, path.clone(), out);
                        match toks.get(*i).map(String::as_str) {
                            Some(",") => *i += 1,
                            Some("}") => {
                                *i += 1;
                                return;
                            }
                            _ => return,
                        }
                        if toks.get(*i).map(String::as_str) == Some("}") {
                            *i += 1;
                            return;
                        }
                    }
                }
                "," | "}" => break,
                "*" => {
                    *i += 1;
                    out.push((path.clone(), String::new()));
                    return;
                }
                "as" => {
                    *i += 1;
                    let alias = toks.get(*i).cloned().unwrap_or_default();
                    *i += 1;
                    let p = if path.last().map(String::as_str) == Some("self") {
                        path[..path.len() - 1].to_vec()
                    } else {
                        path.clone()
                    };
                    out.push((p, alias));
                    return;
                }
                word => {
                    path.push(word.to_owned());
                    *i += 1;
                }
            }
        }
        if path.last().map(String::as_str) == Some("self") {
            path.pop();
        }
        if let Some(last) = path.last().cloned() {
            out.push((path, last));
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    tree(toks, &mut i, Vec::new(), &mut out);
    out
}

struct Crate {
    files: Vec<File>,
    modules: BTreeMap<Vec<String>, usize>,
}

impl Crate {
    /// The file a path (from the crate root) lands in: its longest prefix
    /// that is a file's module.
    fn file_of(&self, path: &[String]) -> Option<usize> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.modules.get(&path[..n]).copied())
    }

    /// A path as written in the module `here`, from the crate root; `None`
    /// for a path outside the crate.
    fn absolute(
        &self,
        here: &[String],
        names: &BTreeMap<String, Vec<String>>,
        path: &[String],
    ) -> Option<Vec<String>> {
        let first = path.first()?;
        let (mut base, rest) = match first.as_str() {
            "crate" => (Vec::new(), &path[1..]),
            "self" => (here.to_vec(), &path[1..]),
            "super" => {
                let mut base = here.to_vec();
                let mut rest = path;
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop();
                    rest = &rest[1..];
                }
                (base, rest)
            }
            word => match names.get(word) {
                Some(full) => (full.clone(), &path[1..]),
                None => return None,
            },
        };
        base.extend(rest.iter().cloned());
        Some(base)
    }
}

/// Every file each file imports, with the line of the first import.
fn graph(krate: &Crate) -> BTreeMap<usize, BTreeMap<usize, usize>> {
    let mut edges: BTreeMap<usize, BTreeMap<usize, usize>> = BTreeMap::new();
    for (at, file) in krate.files.iter().enumerate() {
        let toks = tokens(&file.code);
        // Names this file can start a path with: its child modules, then
        // modules its `use` items bring in.
        let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for w in toks.windows(2) {
            if w[0].0 == "mod" && krate.modules.contains_key(&child(&file.module, &w[1].0)) {
                names.insert(w[1].0.clone(), child(&file.module, &w[1].0));
            }
        }
        let mut paths: Vec<(Vec<String>, usize)> = Vec::new();
        let mut i = 0;
        let mut in_use = vec![false; toks.len()];
        while i < toks.len() {
            let starts_use =
                toks[i].0 == "use" && (i == 0 || !matches!(toks[i - 1].0.as_str(), "::"));
            if starts_use {
                let end = (i..toks.len())
                    .find(|&j| toks[j].0 == ";")
                    .unwrap_or(toks.len());
                let words: Vec<String> = toks[i + 1..end].iter().map(|t| t.0.clone()).collect();
                for (path, bound) in use_paths(&words) {
                    if let Some(full) = krate.absolute(&file.module, &names, &path) {
                        if krate.modules.contains_key(&full) && !bound.is_empty() {
                            names.insert(bound, full.clone());
                        }
                        paths.push((full, toks[i].1));
                    }
                }
                for flag in &mut in_use[i..end] {
                    *flag = true;
                }
                i = end;
            }
            i += 1;
        }
        // Paths written inline.
        let mut i = 0;
        while i < toks.len() {
            let after_sep = i > 0 && toks[i - 1].0 == "::";
            if in_use[i] || after_sep || toks.get(i + 1).map(|t| t.0.as_str()) != Some("::") {
                i += 1;
                continue;
            }
            let mut path = vec![toks[i].0.clone()];
            let mut j = i + 1;
            while j + 1 < toks.len() && toks[j].0 == "::" && ident_byte(toks[j + 1].0.as_bytes()[0])
            {
                path.push(toks[j + 1].0.clone());
                j += 2;
            }
            if let Some(full) = krate.absolute(&file.module, &names, &path) {
                paths.push((full, toks[i].1));
            }
            i = j;
        }
        for (path, line) in paths {
            if let Some(to) = krate.file_of(&path)
                && to != at
            {
                edges.entry(at).or_default().entry(to).or_insert(line);
            }
        }
    }
    edges
}

fn child(module: &[String], name: &str) -> Vec<String> {
    let mut m = module.to_vec();
    m.push(name.to_owned());
    m
}

/// The circles of the graph (strongly connected sets of two or more
/// files), by Tarjan's algorithm.
fn circles(n: usize, edges: &BTreeMap<usize, BTreeMap<usize, usize>>) -> Vec<Vec<usize>> {
    struct State<'a> {
        edges: &'a BTreeMap<usize, BTreeMap<usize, usize>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        let targets: Vec<usize> = s
            .edges
            .get(&v)
            .map(|e| e.keys().copied().collect())
            .unwrap_or_default();
        for w in targets {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(i) if s.on_stack[w] => s.low[v] = s.low[v].min(i),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut set = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack[w] = false;
                set.push(w);
                if w == v {
                    break;
                }
            }
            if set.len() > 1 {
                s.out.push(set);
            }
        }
    }
    let mut s = State {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}

/// The layers and allowed upward imports, read from `ARCHITECTURE.md`:
/// under "## Layers", lines `N. module, module` (top first); under
/// "### Imports that run up", lines `` - `a.rs` -> `b.rs`: why ``.
fn architecture() -> (BTreeMap<String, usize>, BTreeSet<(String, String)>) {
    let text =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap();
    let mut layers = BTreeMap::new();
    let mut allowed = BTreeSet::new();
    let mut section = "";
    for line in text.lines() {
        if line.starts_with("## ") || line.starts_with("### ") {
            section = if line == "## Layers" {
                "layers"
            } else if line == "### Imports that run up" {
                "up"
            } else {
                ""
            };
            continue;
        }
        match section {
            "layers" => {
                let Some((n, mods)) = line.split_once(". ") else {
                    continue;
                };
                let Ok(n) = n.trim().parse::<usize>() else {
                    continue;
                };
                for m in mods.split(',') {
                    let m = m.trim().trim_matches('`');
                    if !m.is_empty() {
                        layers.insert(m.to_owned(), n);
                    }
                }
            }
            "up" => {
                let ticks: Vec<&str> = line.split('`').collect();
                if line.starts_with("- `") && ticks.len() >= 4 {
                    allowed.insert((ticks[1].to_owned(), ticks[3].to_owned()));
                }
            }
            _ => {}
        }
    }
    (layers, allowed)
}

/// A module's layer: the layer of its longest listed prefix (`aggregate`
/// covers `aggregate::store`); the crate root is the top.
fn layer_of(layers: &BTreeMap<String, usize>, module: &[String]) -> Option<usize> {
    if module.is_empty() {
        return Some(0);
    }
    (1..=module.len())
        .rev()
        .find_map(|n| layers.get(&module[..n].join("::")).copied())
}

/// Functions over the cap that are not one `match`: (file, name, lines).
fn long_functions(file: &File) -> Vec<(String, usize)> {
    let toks = tokens(&file.code);
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if t.0 != "fn" {
            continue;
        }
        let Some(name) = toks.get(i + 1) else {
            continue;
        };
        // The body: the first `{` at depth 0 of parentheses before a `;`.
        let mut j = i + 2;
        let mut parens = 0i32;
        while j < toks.len() {
            match toks[j].0.as_str() {
                "(" | "[" => parens += 1,
                ")" | "]" => parens -= 1,
                "{" if parens == 0 => break,
                ";" if parens == 0 => break,
                _ => {}
            }
            j += 1;
        }
        if j >= toks.len() || toks[j].0 != "{" {
            continue;
        }
        let open = j;
        let mut depth = 0;
        while j < toks.len() {
            match toks[j].0.as_str() {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        let lines = toks.get(j).map_or(0, |t| t.1) - t.1 + 1;
        let one_match = toks.get(open + 1).is_some_and(|t| t.0 == "match")
            && toks.get(j.saturating_sub(1)).is_some_and(|t| t.0 == "}");
        if lines > MAX_FN_LINES && !one_match {
            out.push((name.0.clone(), lines));
        }
    }
    out
}

#[test]
fn imports_only_go_down() {
    let (files, sizes) = files();
    let modules = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.module.clone(), i))
        .collect();
    let krate = Crate { files, modules };
    let edges = graph(&krate);
    let (layers, allowed) = architecture();
    let mut problems = Vec::new();

    if std::env::var_os("LAYERS_EDGES").is_some() {
        for (&a, targets) in &edges {
            for (&b, line) in targets {
                println!(
                    "edge {}:{} -> {}",
                    krate.files[a].name, line, krate.files[b].name
                );
            }
        }
    }
    let found = circles(krate.files.len(), &edges);
    for set in &found {
        let names: Vec<&str> = set.iter().map(|&i| krate.files[i].name.as_str()).collect();
        problems.push(format!(
            "a circle of {} files: {}",
            set.len(),
            names.join(", ")
        ));
        for &a in set {
            for (&b, line) in &edges[&a] {
                if set.contains(&b) {
                    println!(
                        "  {}:{} -> {}",
                        krate.files[a].name, line, krate.files[b].name
                    );
                }
            }
        }
    }
    let mut up = 0;
    let mut allowed_used = BTreeSet::new();
    for (&a, targets) in &edges {
        let from = &krate.files[a];
        for (&b, line) in targets {
            let to = &krate.files[b];
            let (Some(la), Some(lb)) = (
                layer_of(&layers, &from.module),
                layer_of(&layers, &to.module),
            ) else {
                let missing = if layer_of(&layers, &from.module).is_none() {
                    from
                } else {
                    to
                };
                problems.push(format!(
                    "{} is in no layer of ARCHITECTURE.md",
                    missing.name
                ));
                continue;
            };
            // Layer 1 is the top: a larger number is lower.
            if lb < la {
                up += 1;
                let pair = (from.name.clone(), to.name.clone());
                if allowed.contains(&pair) {
                    allowed_used.insert(pair);
                } else {
                    problems.push(format!(
                        "{}:{} imports {}, a layer above it (and not listed under \"Imports that run up\")",
                        from.name, line, to.name
                    ));
                }
            }
        }
    }
    for pair in allowed.difference(&allowed_used) {
        problems.push(format!(
            "{} -> {} is listed as running up but is not an import",
            pair.0, pair.1
        ));
    }
    if allowed.len() > 5 {
        problems.push(format!("{} imports run up; at most 5 may", allowed.len()));
    }
    for (name, lines) in &sizes {
        if *lines > MAX_FILE_LINES {
            problems.push(format!("{name} has {lines} lines, over {MAX_FILE_LINES}"));
        }
    }
    for file in &krate.files {
        for (name, lines) in long_functions(file) {
            problems.push(format!(
                "{}: fn {name} has {lines} lines, over {MAX_FN_LINES}",
                file.name
            ));
        }
    }
    problems.sort();
    problems.dedup();
    let edge_count: usize = edges.values().map(BTreeMap::len).sum();
    println!(
        "{} files, {} imports between them, {} circles, {} running up",
        krate.files.len(),
        edge_count,
        found.len(),
        up
    );
    assert!(
        problems.is_empty(),
        "the layout of src/ breaks its rules:\n{}",
        problems.join("\n")
    );
}
