//! The metrics a `serve` process publishes match the table in
//! `docs/operations.md`, both ways; the crates' name lists are complete (no
//! metric call in any crate names its metric by a string literal or by a
//! constant missing from the lists); and `telemetry::describe` describes every
//! listed metric with a unit and help text.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

/// The workspace root (this crate is `crates/tests`).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the workspace root")
}

/// Every metric the service publishes, by the crates' lists; a name listed
/// twice is a failure.
fn listed() -> BTreeSet<&'static str> {
    let mut names = BTreeSet::new();
    for name in scorekeeper_service::telemetry::metric_names() {
        assert!(names.insert(name), "{name} is listed twice");
    }
    names
}

/// The first cell of every row of the metrics table in docs/operations.md.
fn documented() -> BTreeSet<String> {
    let path = workspace().join("docs/operations.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("Metrics"))
        .expect("docs/operations.md has a `## Metrics` section");
    let mut names = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.trim_start_matches("| `");
        let name = cell.split('`').next().unwrap_or_default().to_owned();
        assert!(names.insert(name.clone()), "{name} is in the operations table twice");
    }
    assert!(!names.is_empty(), "no rows found in the metrics table of docs/operations.md");
    names
}

#[test]
fn every_metric_of_the_service_is_in_the_operations_table_and_vice_versa() {
    let listed: BTreeSet<String> = listed().into_iter().map(str::to_owned).collect();
    let documented = documented();
    let undocumented: Vec<_> = listed.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&listed).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/operations.md's metrics table and the code differ:\n  published but not in the table: \
         {undocumented:?}\n  in the table but published by no crate: {unknown:?}"
    );
}

/// The `pub const NAME: &str = "value";` items of a crate's `src/metrics.rs`.
fn constants(metrics_rs: &Path) -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(metrics_rs).unwrap_or_else(|e| panic!("{}: {e}", metrics_rs.display()));
    text.split("pub const ")
        .skip(1)
        .filter_map(|item| {
            let item: String = item.split(';').next()?.split_whitespace().collect::<Vec<_>>().join(" ");
            let (name, value) = item.split_once(": &str = ")?;
            Some((name.to_owned(), value.trim_matches('"').to_owned()))
        })
        .collect()
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.map(|e| e.expect("a directory entry")) {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The first argument of every `counter!(`, `gauge!(` and `histogram!(` call
/// in `text` (not the `describe_*` ones), whitespace removed.
fn metric_call_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for macro_name in ["counter!(", "gauge!(", "histogram!("] {
        for (at, _) in text.match_indices(macro_name) {
            if text[..at].ends_with("describe_") {
                continue;
            }
            let rest = &text[at + macro_name.len()..];
            let end = rest.find([',', ')']).unwrap_or(rest.len());
            names.push(rest[..end].split_whitespace().collect());
        }
    }
    names
}

#[test]
fn metric_calls_name_their_metric_by_a_listed_constant() {
    let root = workspace();
    let listed = listed();
    // Each crate's constants, by the path code uses to reach them.
    let mut crates: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut calls = 0;
    let mut wrong = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .map(|e| e.expect("an entry").path())
        .collect();
    dirs.sort();
    for dir in &dirs {
        let metrics_rs = dir.join("src/metrics.rs");
        if metrics_rs.exists() {
            let folder = dir.file_name().and_then(|n| n.to_str()).expect("a crate folder name");
            let constants = constants(&metrics_rs);
            assert!(!constants.is_empty(), "{} names no metric", metrics_rs.display());
            for (name, value) in &constants {
                assert!(
                    listed.contains(value.as_str()),
                    "{}: {name} = {value:?} is missing from the lists `metric_names` joins",
                    metrics_rs.display()
                );
            }
            crates.insert(format!("scorekeeper_{folder}"), constants);
        }
    }
    for dir in &dirs {
        let folder = dir.file_name().and_then(|n| n.to_str()).expect("a crate folder name");
        let mut files = Vec::new();
        sources(&dir.join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file");
            for argument in metric_call_names(&text) {
                calls += 1;
                let named = argument.rsplit_once("::metrics::").and_then(|(owner, constant)| {
                    let owner =
                        if owner == "crate" { format!("scorekeeper_{folder}") } else { owner.to_owned() };
                    crates.get(&owner)?.get(constant)
                });
                if named.is_none() {
                    wrong
                        .push(format!("{}: {argument}", file.strip_prefix(&root).unwrap_or(&file).display()));
                }
            }
        }
    }
    // The analytics writer, the job worker and scheduler, the outbox, the
    // audit and serve all publish: finding fewer calls means the scan broke.
    assert!(calls >= 15, "found only {calls} metric calls in crates/*/src; the scan is broken");
    assert!(
        wrong.is_empty(),
        "metric calls that do not name a constant of a metrics module:\n{}",
        wrong.join("\n")
    );
}

/// What a recorder was told about one metric.
struct Description {
    kind: &'static str,
    unit: Option<Unit>,
    help: String,
}

/// A recorder that keeps the descriptions it is given, by metric name.
#[derive(Default)]
struct Descriptions(Mutex<BTreeMap<String, Description>>);

impl Descriptions {
    fn note(&self, kind: &'static str, key: KeyName, unit: Option<Unit>, help: SharedString) {
        let previous = self
            .0
            .lock()
            .unwrap()
            .insert(key.as_str().to_owned(), Description { kind, unit, help: help.into_owned() });
        assert!(previous.is_none(), "{} is described twice", key.as_str());
    }
}

impl Recorder for Descriptions {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
        self.note("counter", key, unit, help);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
        self.note("gauge", key, unit, help);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
        self.note("histogram", key, unit, help);
    }
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn describe_service_describes_every_listed_metric() {
    let recorder = Descriptions::default();
    metrics::with_local_recorder(&recorder, scorekeeper_service::telemetry::describe);
    let described = recorder.0.into_inner().unwrap();
    let names: BTreeSet<&str> = described.keys().map(String::as_str).collect();
    assert_eq!(names, listed(), "described (left) and listed (right) metrics differ");
    for (name, Description { kind, unit, help }) in &described {
        assert!(unit.is_some() && !help.trim().is_empty(), "{name} ({kind}) lacks a unit or help text");
        // Prometheus convention, which the table's readers rely on.
        if name.ends_with("_total") {
            assert_eq!(*kind, "counter", "{name} ends in _total but is a {kind}");
        }
    }
}
