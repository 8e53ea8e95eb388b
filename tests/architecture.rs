//! The layering of ARCHITECTURE.md, checked on the sources: which module may depend on which, and
//! no import cycle between files.
//!
//! Every path a file names is scanned (`use` trees, inline `crate::`/`super::`/`self::` paths, the
//! bin's `spex::` paths) and resolved to the file that defines the item, through `pub use`
//! re-exports, so that `use super::Model` in a sibling counts as a dependency on the file defining
//! `Model`, not on `mod.rs`. A dependency of a dependency counts too: report/ using the crate's
//! error type, which wraps the model's, would depend on model/.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which crate a module lives in: the library, the math crate it re-exports, or the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Krate {
    Lib,
    Sparse,
    Bin,
}

/// A module: its crate and its path from the crate root.
type Module = (Krate, Vec<String>);

/// One source file, as the scan sees it.
struct SourceFile {
    path: PathBuf,
    module: Module,
    /// The text with comments and string and char literals blanked.
    code: String,
    /// Child modules declared in this file (`mod x;` and inline `mod x { .. }`).
    children: BTreeSet<String>,
    /// `pub use` re-exports: visible name -> target path as written (relative to this module).
    reexports: Vec<(String, Vec<String>)>,
    /// Glob re-exports (`pub use x::*`): the target module paths as written.
    globs: Vec<Vec<String>>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Blanks comments, strings and char literals (keeping line structure), so paths in prose are
/// not mistaken for dependencies.
fn strip(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied().unwrap_or('\0');
        if c == '/' && next == '/' {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == '*' {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == 'r' && (next == '"' || next == '#') && !ident_char(b.get(i.wrapping_sub(1)))
        {
            // A raw string r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match b.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|k| b.get(j + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some('\n') => out.push('\n'),
                    _ => {}
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                if b.get(i) == Some(&'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'), else a lifetime.
            let close = if next == '\\' {
                (i + 2..(i + 12).min(b.len())).find(|&k| b[k] == '\'')
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(k) => {
                    out.push_str("' '");
                    i = k + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_char(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// Splits code into identifiers, `::` and single punctuation characters.
fn tokens(code: &str) -> Vec<String> {
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push(b[start..i].iter().collect());
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push("::".to_string());
            i += 2;
        } else if c.is_whitespace() || c.is_numeric() {
            i += 1;
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}

/// Expands a `use` tree starting at `toks[*i]` into full paths (with their visible names), up to
/// the `;` or the `,`/`}` that ends it.
fn use_tree(
    toks: &[String],
    i: &mut usize,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, String)>,
) {
    let mut path = prefix.to_vec();
    while *i < toks.len() {
        let t = toks[*i].as_str();
        match t {
            "::" => *i += 1,
            "{" => {
                *i += 1;
                loop {
                    use_tree(toks, i, &path, out);
                    match toks.get(*i).map(String::as_str) {
                        Some(",") => *i += 1,
                        Some("}") => {
                            *i += 1;
                            break;
                        }
                        _ => break,
                    }
                    if toks.get(*i).map(String::as_str) == Some("}") {
                        *i += 1;
                        break;
                    }
                }
                return;
            }
            "*" => {
                *i += 1;
                path.push("*".to_string());
                out.push((path, "*".to_string()));
                return;
            }
            "as" => {
                *i += 1;
                let alias = toks.get(*i).cloned().unwrap_or_default();
                *i += 1;
                out.push((path, alias));
                return;
            }
            ";" | "," | "}" => {
                let name = match path.last().map(String::as_str) {
                    Some("self") => {
                        path.pop();
                        path.last().cloned().unwrap_or_default()
                    }
                    Some(last) => last.to_string(),
                    None => String::new(),
                };
                if !path.is_empty() {
                    out.push((path, name));
                }
                return;
            }
            _ => {
                path.push(t.to_string());
                *i += 1;
            }
        }
    }
}

/// The modules' files of one crate: `root_file` is `lib.rs` or `main.rs`.
fn crate_files(krate: Krate, src: &Path, root_file: &str, skip: &[&str]) -> Vec<SourceFile> {
    let mut files = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(src).unwrap().to_path_buf();
            let rel_s = rel.to_string_lossy().replace('\\', "/");
            if skip
                .iter()
                .any(|s| rel_s == *s || rel_s.starts_with(&format!("{s}/")))
            {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let mut module: Vec<String> = rel_s
                .trim_end_matches(".rs")
                .split('/')
                .map(str::to_string)
                .collect();
            let last = module.last().cloned().unwrap_or_default();
            if last == "mod" || (module.len() == 1 && last == root_file.trim_end_matches(".rs")) {
                module.pop();
            } else if module.len() == 1 && (last == "lib" || last == "main") {
                continue; // the other crate root in the same folder
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = strip(&text);
            files.push(parse_file(path, (krate, module), code));
        }
    }
    files
}

fn parse_file(path: PathBuf, module: Module, code: String) -> SourceFile {
    let toks = tokens(&code);
    let mut children = BTreeSet::new();
    let mut reexports = Vec::new();
    let mut globs = Vec::new();
    for (k, t) in toks.iter().enumerate() {
        if t == "mod"
            && toks
                .get(k + 1)
                .is_some_and(|n| n.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            children.insert(toks[k + 1].clone());
        }
        if t == "use" && k > 0 && is_pub_before(&toks, k) {
            let mut i = k + 1;
            let mut paths = Vec::new();
            use_tree(&toks, &mut i, &[], &mut paths);
            for (p, name) in paths {
                if name == "*" {
                    globs.push(p[..p.len() - 1].to_vec());
                } else {
                    reexports.push((name, p));
                }
            }
        }
    }
    SourceFile {
        path,
        module,
        code,
        children,
        reexports,
        globs,
    }
}

/// Whether the `use` at `toks[k]` is public (`pub use`, `pub(crate) use`).
fn is_pub_before(toks: &[String], k: usize) -> bool {
    toks[k - 1] == "pub" || (toks[k - 1] == ")" && k >= 4 && toks[k - 4] == "pub")
}

/// All files of the library, the math crate and the binary.
struct Tree {
    files: Vec<SourceFile>,
    by_module: BTreeMap<Module, usize>,
}

impl Tree {
    fn load() -> Tree {
        let root = root();
        let mut files = crate_files(Krate::Lib, &root.join("src"), "lib.rs", &["main.rs", "cli"]);
        let bin_root = root.join("src");
        let mut bin = crate_files(Krate::Bin, &bin_root, "main.rs", &["lib.rs"]);
        bin.retain(|f| f.module.1.is_empty() || f.module.1[0] == "cli");
        files.extend(bin);
        files.extend(crate_files(
            Krate::Sparse,
            &root.join("crates/spex-sparse/src"),
            "lib.rs",
            &[],
        ));
        let by_module = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.module.clone(), i))
            .collect();
        Tree { files, by_module }
    }

    /// The file that defines what `path` (absolute in `krate`) names, following modules and
    /// re-exports; `None` for items outside the three crates.
    fn resolve(&self, krate: Krate, path: &[String], depth: usize) -> Option<usize> {
        if depth > 16 {
            return None;
        }
        let mut module: Vec<String> = Vec::new();
        let mut file = *self.by_module.get(&(krate, module.clone()))?;
        for (k, seg) in path.iter().enumerate() {
            let f = &self.files[file];
            if f.children.contains(seg) {
                module.push(seg.clone());
                match self.by_module.get(&(krate, module.clone())) {
                    Some(&child) => file = child,
                    None => return Some(file), // an inline module: part of this file
                }
                continue;
            }
            // A name re-exported here: follow it to where it is defined.
            if let Some((_, target)) = f.reexports.iter().find(|(name, _)| name == seg) {
                let mut full = target.clone();
                full.extend_from_slice(&path[k + 1..]);
                return self
                    .absolute(file, &full)
                    .and_then(|(kr, abs)| self.resolve(kr, &abs, depth + 1))
                    .or(Some(file));
            }
            for glob in &f.globs {
                let mut full = glob.clone();
                full.extend_from_slice(&path[k..]);
                if let Some((kr, abs)) = self.absolute(file, &full) {
                    if let Some(found) = self.resolve(kr, &abs, depth + 1) {
                        if found != file {
                            return Some(found);
                        }
                    }
                }
            }
            return Some(file);
        }
        Some(file)
    }

    /// `path` as written in `file` made absolute: its crate and segments from the crate root;
    /// `None` for external crates.
    fn absolute(&self, file: usize, path: &[String]) -> Option<(Krate, Vec<String>)> {
        self.absolute_in(file, &self.files[file].module.1, path)
    }

    /// As [`Tree::absolute`], written inside the (possibly inline) module `module` of `file`.
    fn absolute_in(
        &self,
        file: usize,
        module: &[String],
        path: &[String],
    ) -> Option<(Krate, Vec<String>)> {
        let f = &self.files[file];
        let krate = f.module.0;
        let module = module.to_vec();
        let first = path.first()?.as_str();
        let (krate, mut abs, rest): (Krate, Vec<String>, &[String]) = match first {
            "crate" => (krate, vec![], &path[1..]),
            "self" => (krate, module, &path[1..]),
            "super" => {
                let mut m = module.clone();
                let mut k = 0;
                while path.get(k).map(String::as_str) == Some("super") {
                    m.pop();
                    k += 1;
                }
                (krate, m, &path[k..])
            }
            // The bin names the library `spex`; the library's unit tests do too (`extern crate self`).
            "spex" if krate != Krate::Sparse => (Krate::Lib, vec![], &path[1..]),
            "spex_sparse" => (Krate::Sparse, vec![], &path[1..]),
            name if f.children.contains(name) => (krate, f.module.1.clone(), path),
            _ => return None,
        };
        abs.extend_from_slice(rest);
        // The library re-exports the math crate as `sparse`.
        if krate == Krate::Lib && abs.first().map(String::as_str) == Some("sparse") {
            return Some((Krate::Sparse, abs[1..].to_vec()));
        }
        Some((krate, abs))
    }

    /// Every file each file depends on.
    fn edges(&self) -> Vec<BTreeSet<usize>> {
        (0..self.files.len())
            .map(|i| {
                let f = &self.files[i];
                let toks = tokens(&f.code);
                // Paths with the module they are written in (inline `mod x { .. }` included).
                let mut paths: Vec<(Vec<String>, Vec<String>)> = Vec::new();
                let mut module = f.module.1.clone();
                let mut inline: Vec<usize> = Vec::new(); // brace depth at each inline module
                let mut depth = 0usize;
                let mut k = 0;
                while k < toks.len() {
                    match toks[k].as_str() {
                        "{" => depth += 1,
                        "}" => {
                            depth = depth.saturating_sub(1);
                            if inline.last() == Some(&depth) {
                                inline.pop();
                                module.pop();
                            }
                        }
                        "mod" if toks.get(k + 2).map(String::as_str) == Some("{") => {
                            module.push(toks[k + 1].clone());
                            inline.push(depth);
                            depth += 1;
                            k += 3;
                            continue;
                        }
                        _ => {}
                    }
                    if toks[k] == "use" {
                        let mut j = k + 1;
                        let mut found = Vec::new();
                        use_tree(&toks, &mut j, &[], &mut found);
                        paths.extend(found.into_iter().map(|(p, _)| (module.clone(), p)));
                        k = j;
                        continue;
                    }
                    let starts = ["crate", "super", "self", "spex", "spex_sparse"];
                    let after_sep = k > 0 && toks[k - 1] == "::";
                    if starts.contains(&toks[k].as_str())
                        && !after_sep
                        && toks.get(k + 1).map(String::as_str) == Some("::")
                    {
                        let mut p = vec![toks[k].clone()];
                        let mut j = k + 1;
                        while toks.get(j).map(String::as_str) == Some("::")
                            && toks
                                .get(j + 1)
                                .is_some_and(|t| t.chars().all(|c| c.is_alphanumeric() || c == '_'))
                        {
                            p.push(toks[j + 1].clone());
                            j += 2;
                        }
                        paths.push((module.clone(), p));
                        k = j;
                        continue;
                    }
                    k += 1;
                }
                paths
                    .iter()
                    .filter_map(|(m, p)| {
                        let p: Vec<String> = p.iter().filter(|s| *s != "*").cloned().collect();
                        self.absolute_in(i, m, &p)
                    })
                    .filter_map(|(kr, abs)| self.resolve(kr, &abs, 0))
                    .filter(|&t| t != i)
                    .collect()
            })
            .collect()
    }

    fn name(&self, i: usize) -> String {
        let root = root();
        self.files[i]
            .path
            .strip_prefix(&root)
            .unwrap_or(&self.files[i].path)
            .display()
            .to_string()
    }

    /// The top-level module a file belongs to: `sparse`, `model`, `cli`, `io`... (`""` for lib.rs).
    fn layer(&self, i: usize) -> &str {
        match &self.files[i].module {
            (Krate::Sparse, _) => "sparse",
            (Krate::Bin, _) => "cli",
            (Krate::Lib, m) => m.first().map_or("", String::as_str),
        }
    }
}

/// Files reachable from `from` (itself excluded).
fn reachable(edges: &[BTreeSet<usize>], from: usize) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<usize> = edges[from].iter().copied().collect();
    while let Some(f) = stack.pop() {
        if f != from && seen.insert(f) {
            stack.extend(edges[f].iter().copied());
        }
    }
    seen
}

#[test]
fn layers_depend_only_on_what_the_architecture_allows() {
    let tree = Tree::load();
    let edges = tree.edges();
    let forbidden: &[(&str, &[&str])] = &[
        (
            "sparse",
            &[
                "model", "task", "ablate", "run", "report", "cli", "io", "error",
            ],
        ),
        (
            "model",
            &[
                "task", "ablate", "run", "report", "sparse", "cli", "io", "error",
            ],
        ),
        ("report", &["model", "cli"]),
        ("run", &["cli"]),
        ("task", &["cli"]),
        ("ablate", &["cli"]),
        ("io", &["cli"]),
    ];
    let mut bad = Vec::new();
    for i in 0..tree.files.len() {
        let Some((_, banned)) = forbidden.iter().find(|(l, _)| *l == tree.layer(i)) else {
            continue;
        };
        for j in reachable(&edges, i) {
            if banned.contains(&tree.layer(j)) {
                bad.push(format!("{} -> {}", tree.name(i), tree.name(j)));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "forbidden dependencies (direct or through other files):\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_import_cycle_between_files() {
    let tree = Tree::load();
    let edges = tree.edges();
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for i in 0..tree.files.len() {
        if done.contains(&i) {
            continue;
        }
        let from_i = reachable(&edges, i);
        let mut component: Vec<usize> = from_i
            .iter()
            .copied()
            .filter(|&j| reachable(&edges, j).contains(&i))
            .collect();
        if !component.is_empty() {
            component.push(i);
            component.sort();
            done.extend(component.iter().copied());
            cycles.push(
                component
                    .iter()
                    .map(|&f| tree.name(f))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
    }
    assert!(
        cycles.is_empty(),
        "files that import each other (each line one cycle):\n{}",
        cycles.join("\n")
    );
}

/// The scan itself: a sibling's `use super::Item` resolves to the file defining `Item` through a
/// `pub use` in mod.rs, and paths in comments and strings are ignored.
#[test]
fn the_scan_resolves_reexports_and_ignores_prose() {
    let code =
        strip("// crate::model::x\nlet s = \"crate::cli\"; let c = '\"'; use crate::a::{b::C, d};");
    assert!(!code.contains("model") && !code.contains("cli"), "{code}");
    let toks = tokens(&code);
    let k = toks.iter().position(|t| t == "use").unwrap();
    let mut found = Vec::new();
    use_tree(&toks, &mut (k + 1), &[], &mut found);
    let paths: Vec<String> = found.iter().map(|(p, _)| p.join("::")).collect();
    assert_eq!(paths, ["crate::a::b::C", "crate::a::d"]);

    let tree = Tree::load();
    let by_name = |n: &str| (0..tree.files.len()).find(|&i| tree.name(i) == n).unwrap();
    let edges = tree.edges();
    // run/heads.rs names `crate::sparse::MaskBatch`, re-exported by the math crate's lib.rs.
    let heads = by_name("src/run/heads.rs");
    assert!(edges[heads].contains(&by_name("crates/spex-sparse/src/mask.rs")));
    assert!(!edges[heads].contains(&by_name("crates/spex-sparse/src/lib.rs")));
}
