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
