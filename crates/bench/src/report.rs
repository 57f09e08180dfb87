//! Printing a bench's figures as an aligned table and writing them as JSON.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// Rows of `(label, value)` under a title, aligned.
pub fn print_table(title: &str, rows: &[(&str, String)]) {
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    println!("\n{title}");
    println!("{}", "-".repeat(title.len()));
    for (label, value) in rows {
        println!("  {label:<width$}  {value}");
    }
}

/// Writes `figures` as pretty JSON to `path` (`-` for standard output).
pub fn write_json(path: &Path, figures: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(figures)?;
    if path == Path::new("-") {
        println!("{text}");
        return Ok(());
    }
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}
