//! The crate map that opens `docs/architecture.md` says which crates each
//! crate may call; this holds it to the `[dependencies]` of every
//! `crates/*/Cargo.toml`, both ways, so the map cannot drift from the code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// crate → the workspace crates it depends on, from its manifest (the
/// `scorekeeper-*` lines of `[dependencies]`, not dev or build ones).
fn manifests() -> BTreeMap<String, BTreeSet<String>> {
    let mut crates = BTreeMap::new();
    for entry in std::fs::read_dir(workspace().join("crates")).expect("the crates folder") {
        let manifest = entry.expect("a crate folder").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        let name = text
            .lines()
            .find_map(|line| line.strip_prefix("name = \""))
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{}: no package name", manifest.display()));
        let mut section = "";
        let mut calls = BTreeSet::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line;
            } else if section == "[dependencies]"
                && let Some(rest) = line.strip_prefix("scorekeeper-")
            {
                let dependency = rest.split(['.', ' ', '=']).next().unwrap_or_default();
                calls.insert(dependency.to_owned());
            }
        }
        crates.insert(name.trim_start_matches("scorekeeper-").to_owned(), calls);
    }
    crates
}

/// crate → what the map's "may call" column lists.
fn map() -> BTreeMap<String, BTreeSet<String>> {
    let text =
        std::fs::read_to_string(workspace().join("docs/architecture.md")).expect("docs/architecture.md");
    let section = text.split("## The map").nth(1).expect("a '## The map' section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut crates = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 3, "a map row has crate, owns, may call: {row}");
        let calls = cells[2]
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty() && *c != "—")
            .map(|c| c.trim_matches('`').to_owned())
            .collect();
        crates.insert(cells[0].trim_matches('`').to_owned(), calls);
    }
    crates
}

#[test]
fn the_crate_map_in_the_architecture_doc_matches_the_manifests() {
    let (manifests, map) = (manifests(), map());
    assert!(manifests.len() >= 10, "read the manifests: {manifests:?}");
    let named: BTreeSet<_> = map.keys().collect();
    let built: BTreeSet<_> = manifests.keys().collect();
    assert_eq!(named, built, "every crate is in the map, and the map names no other");
    for (name, calls) in &manifests {
        assert_eq!(&map[name], calls, "`{name}`: the map's 'may call' against its Cargo.toml");
    }
}
