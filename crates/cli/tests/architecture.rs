//! ARCHITECTURE.md's dependency rules, checked: each crate's `[dependencies]` may name only
//! the ottgate crates the table allows, and the pure crates no I/O frameworks.
#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "test code: a failed expectation is a failed test"
)]

use std::collections::BTreeSet;
use std::path::Path;

/// (crate directory, allowed ottgate dependencies, forbidden external dependencies)
const RULES: &[(&str, &[&str], &[&str])] = &[
    ("envelope", &[], &["tokio", "rusqlite", "axum", "reqwest"]),
    (
        "api",
        &["ottgate-envelope"],
        &["tokio", "rusqlite", "axum", "reqwest"],
    ),
    ("core", &[], &["tokio", "rusqlite", "axum", "reqwest"]),
    ("store", &["ottgate-core"], &["axum", "reqwest"]),
    ("channels", &["ottgate-core"], &["rusqlite"]),
    (
        "server",
        &[
            "ottgate-envelope",
            "ottgate-api",
            "ottgate-core",
            "ottgate-store",
            "ottgate-channels",
        ],
        &[],
    ),
    (
        "client",
        &["ottgate-envelope", "ottgate-api"],
        &["rusqlite", "axum"],
    ),
    ("cli", &["ottgate-server", "ottgate-client"], &[]),
    ("testkit", &[], &["rusqlite", "axum"]),
];

/// Names in the `[dependencies]` table of a manifest (not dev- or build-dependencies).
fn dependencies(manifest: &str) -> BTreeSet<String> {
    let mut in_deps = false;
    let mut names = BTreeSet::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if let (true, Some((name, _))) = (in_deps, line.split_once('=')) {
            let name = name.trim().trim_end_matches(".workspace").trim();
            if !name.is_empty() && !name.starts_with('#') {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

#[test]
fn every_crate_depends_only_on_what_architecture_md_allows() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/");
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(crates).expect("crates/ is readable") {
        let dir = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let rule = RULES.iter().find(|(name, _, _)| *name == dir);
        let (_, allowed, forbidden) =
            rule.unwrap_or_else(|| panic!("crates/{dir} is not described in ARCHITECTURE.md"));
        let manifest =
            std::fs::read_to_string(crates.join(&dir).join("Cargo.toml")).expect("manifest");
        for dep in dependencies(&manifest) {
            if dep.starts_with("ottgate-") {
                assert!(
                    allowed.contains(&dep.as_str()),
                    "crates/{dir} must not depend on {dep}"
                );
            }
            assert!(
                !forbidden.contains(&dep.as_str()),
                "crates/{dir} must not depend on {dep}"
            );
        }
        seen.insert(dir);
    }
    assert_eq!(seen.len(), RULES.len(), "every crate in RULES exists");
}

#[test]
fn the_dependency_reader_reads_only_the_dependencies_table() {
    let manifest = "[package]\nname = \"x\"\n[dependencies]\nottgate-core.workspace = true\nserde = { version = \"1\" }\n[dev-dependencies]\nottgate-server.workspace = true\n";
    let deps = dependencies(manifest);
    assert_eq!(
        deps.into_iter().collect::<Vec<_>>(),
        ["ottgate-core", "serde"]
    );
}

/// The wallet modules of `ottgate-channels`: each folder holding a `wallet.rs` (its
/// registry entry, docs/wallets.md).
fn wallet_modules(crates: &Path) -> Vec<String> {
    let src = crates.join("channels/src");
    let mut wallets: Vec<String> = std::fs::read_dir(&src)
        .expect("crates/channels/src is readable")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("wallet.rs").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    wallets.sort();
    wallets
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The wallet modules a source file names through `ottgate_channels::…` paths, in `use`
/// statements (braced groups included) and in expressions.
fn wallets_named(source: &str, wallets: &[String]) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for (at, _) in source.match_indices("ottgate_channels::") {
        let rest = &source[at + "ottgate_channels::".len()..];
        // A `use` path runs to its `;`; any other to the first character outside a path.
        let path = if rest.starts_with('{') {
            rest.split(';').next().unwrap_or(rest)
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            &rest[..end]
        };
        let first_segments = path
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|s| !s.is_empty());
        for segment in first_segments {
            if wallets.iter().any(|w| w == segment) {
                named.insert(segment.to_owned());
            }
        }
    }
    named
}

#[test]
fn the_server_names_no_wallet_module() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/");
    let wallets = wallet_modules(crates);
    assert_eq!(
        wallets,
        ["alipay", "unionpay", "wechat"],
        "the registry's wallets"
    );
    let mut files = Vec::new();
    rust_files(&crates.join("server/src"), &mut files);
    rust_files(&crates.join("cli/src"), &mut files);
    assert!(files.len() > 20, "the server's sources were found");
    for file in files {
        let source = std::fs::read_to_string(&file).expect("source");
        let named = wallets_named(&source, &wallets);
        assert!(
            named.is_empty(),
            "{} names wallet modules {named:?}: go through the registry \
             (ottgate_channels::WALLETS) instead",
            file.display()
        );
    }
}

#[test]
fn wallet_names_are_found_in_use_groups_and_paths() {
    let wallets = ["alipay".to_owned(), "wechat".to_owned()];
    let named = |s: &str| wallets_named(s, &wallets).into_iter().collect::<Vec<_>>();
    assert_eq!(
        named("use ottgate_channels::{Channels, alipay::{self, sign}};"),
        ["alipay"]
    );
    assert_eq!(
        named("let c = ottgate_channels::wechat::sandbox(x);"),
        ["wechat"]
    );
    assert!(named("use ottgate_channels::{WALLETS, Channels};\nlet alipay = 1;").is_empty());
}

/// A source file's module path under `src/`: `lib.rs` is `[]`, `a/mod.rs` and `a.rs` are
/// `["a"]`, `a/b.rs` is `["a", "b"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).expect("under src/");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The paths a `use` tree names, groups expanded: `a::{b, c::{d}}` is `a::b`, `a::c::d`.
fn expand_use(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand_use(&format!("{prefix}{p}")))
        .collect()
}

/// The modules of `modules` that a file at `module` refers to: through `use` (with
/// `crate::`, `super::` or a child module's name) and through `crate::…` paths in code.
fn referenced_modules(
    source: &str,
    module: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> BTreeSet<Vec<String>> {
    let mut paths = Vec::new();
    // `pub use` re-exports make a module's face, as the crate root's do: they declare,
    // they do not depend.
    for statement in source.split(';') {
        let statement = statement.trim();
        let tree = statement
            .rsplit_once("\nuse ")
            .map(|(_, t)| t)
            .or_else(|| statement.strip_prefix("use "));
        if let Some(tree) = tree {
            paths.extend(expand_use(tree));
        }
    }
    // Paths in code: `crate::…`, `super::…` (`self::…` names the module itself).
    for prefix in ["crate::", "super::"] {
        for (at, _) in source.match_indices(prefix) {
            let before = source[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || "_:$".contains(c)) {
                continue; // `$crate::`, `foo_crate::`, or the middle of a longer path
            }
            let rest = &source[at..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            paths.push(rest[..end].to_owned());
        }
    }
    // `super` of a `mod.rs` is its folder's parent; of `a/b.rs`, the module `a`.
    let own: Vec<String> = module.to_vec();
    let parent: Vec<String> = module[..module.len().saturating_sub(1)].to_vec();
    let mut found = BTreeSet::new();
    for path in paths {
        let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let absolute: Vec<String> = match segments.first() {
            Some(&"crate") => segments[1..].iter().map(|s| s.to_string()).collect(),
            Some(&"super") => parent
                .iter()
                .cloned()
                .chain(segments[1..].iter().map(|s| s.to_string()))
                .collect(),
            Some(&"self") => own
                .iter()
                .cloned()
                .chain(segments[1..].iter().map(|s| s.to_string()))
                .collect(),
            Some(first) => {
                let mut child = own.clone();
                child.push(first.to_string());
                if !modules.contains(&child) {
                    continue;
                }
                own.iter()
                    .cloned()
                    .chain(segments.iter().map(|s| s.to_string()))
                    .collect()
            }
            None => continue,
        };
        // The deepest module the path reaches.
        let target = (0..=absolute.len())
            .rev()
            .map(|n| absolute[..n].to_vec())
            .find(|m| modules.contains(m));
        if let Some(target) = target.filter(|t| t != module && !t.is_empty()) {
            found.insert(target);
        }
    }
    found
}

/// A module cycle in `graph`, if there is one, as the modules along it.
fn find_cycle(
    graph: &std::collections::BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
) -> Option<Vec<Vec<String>>> {
    fn visit(
        node: &Vec<String>,
        graph: &std::collections::BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// The module graph of the crate whose sources are in `src`: each module and the modules
/// it uses (tests left out: they may reach anywhere).
fn module_graph(src: &Path) -> std::collections::BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    let mut graph = std::collections::BTreeMap::new();
    for file in &files {
        let module = module_of(src, file);
        let source = std::fs::read_to_string(file).expect("source");
        let source = source.split("#[cfg(test)]").next().unwrap_or_default();
        // Comments (doc links included) use nothing.
        let code: String = source
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let refs = referenced_modules(&code, &module, &modules);
        graph.insert(module, refs);
    }
    // The crate root declares and re-exports everything; every module may use it.
    graph.remove(&Vec::new());
    graph
}

#[test]
fn no_crate_has_modules_that_import_one_another_in_a_cycle() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/");
    let (mut checked, mut cycles) = (0, Vec::new());
    for (name, _, _) in RULES {
        let src = crates.join(name).join("src");
        let graph = module_graph(&src);
        if let Some(cycle) = find_cycle(&graph) {
            let names: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
            cycles.push(format!("crates/{name}: {}", names.join(" -> ")));
        }
        checked += graph.len();
    }
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
    assert!(
        checked > 100,
        "the workspace's modules were read ({checked})"
    );
}

/// The server's entry points — where requests come in — reach the store only through the
/// service: none of them names `ottgate_store` or the service's `store` field.
#[test]
fn entry_points_reach_the_store_only_through_the_service() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/")
        .join("server/src");
    let mut files = Vec::new();
    for entry in ["envelope", "rest", "checkout", "dashboard"] {
        rust_files(&src.join(entry), &mut files);
    }
    for file in ["sandbox.rs", "notify.rs", "ops.rs", "link.rs", "check.rs"] {
        files.push(src.join(file));
    }
    assert!(files.len() > 20, "the entry points were found");
    let mut offenders = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).expect("source");
        let code = source.split("#[cfg(test)]").next().unwrap_or_default();
        if let Some(line) = store_named(code) {
            offenders.push(format!("{}: {line}", file.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "entry points naming the store (go through the service):\n{}",
        offenders.join("\n")
    );
}

/// The first line of `code` that names the store: the crate, or the service's field.
fn store_named(code: &str) -> Option<&str> {
    code.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//"))
        .find(|l| l.contains("ottgate_store") || l.contains(".store.") || l.ends_with(".store"))
}

#[test]
fn use_trees_and_cycles_are_read() {
    assert_eq!(
        expand_use("crate::a::{b, c::{d, e}}"),
        ["crate::a::b", "crate::a::c::d", "crate::a::c::e"]
    );
    let m = |s: &str| -> Vec<String> { s.split("::").map(str::to_owned).collect() };
    let modules: BTreeSet<Vec<String>> = [m("a"), m("a::b"), m("c")].into();
    let refs = referenced_modules(
        "use super::b::X;\nuse crate::c;\nfn f() { crate::a::Y }",
        &m("a::b"),
        &modules,
    );
    assert_eq!(refs, [m("a"), m("c")].into());
    let graph = [(m("a"), [m("c")].into()), (m("c"), [m("a")].into())].into();
    assert!(find_cycle(&graph).is_some());
    let graph = [(m("a"), [m("c")].into()), (m("c"), BTreeSet::new())].into();
    assert!(find_cycle(&graph).is_none());
    // Paths in code through `super::` count; `$crate::` and longer names do not.
    let modules: BTreeSet<Vec<String>> = [m("a"), m("a::b"), m("a::c"), m("c")].into();
    let refs = referenced_modules(
        "fn f() { super::c::g(); $crate::c::h(); my_crate::c::i() }",
        &m("a::b"),
        &modules,
    );
    assert_eq!(refs, [m("a::c")].into());
    assert_eq!(
        store_named("let x = state.service.store.order(&id);"),
        Some("let x = state.service.store.order(&id);")
    );
    assert_eq!(
        store_named("use ottgate_store::Order;"),
        Some("use ottgate_store::Order;")
    );
    assert_eq!(store_named("// the store keeps it\nlet y = 1;"), None);
}
