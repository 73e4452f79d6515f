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
    ("envelope", &[], &["tokio", "sqlx", "axum", "reqwest"]),
    (
        "api",
        &["ottgate-envelope"],
        &["tokio", "sqlx", "axum", "reqwest"],
    ),
    ("core", &[], &["tokio", "sqlx", "axum", "reqwest"]),
    ("store", &["ottgate-core"], &["axum", "reqwest"]),
    ("channels", &["ottgate-core"], &["sqlx"]),
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
        &["sqlx", "axum"],
    ),
    ("cli", &["ottgate-server", "ottgate-client"], &[]),
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
