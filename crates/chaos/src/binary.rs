//! Finding the `scorekeeper` binary that the fleet runs.
//!
//! `CARGO_BIN_EXE_*` exists only inside the cli crate, so the chaos crate
//! looks for the binary beside its own executable: tests run from
//! `target/<profile>/deps/`, the chaos binary from `target/<profile>/`.
//! A binary older than the running executable may predate changes to the
//! libraries both are built from, so under nextest (which has released
//! cargo's lock when tests run) it is rebuilt with `cargo build` first;
//! `cargo nextest run --workspace` and `cargo test --workspace` build it
//! anyway, for the cli's own tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};

/// The `scorekeeper` binary: `SCOREKEEPER_BIN` if set, else the one in the
/// target directory of the running executable, built when missing or older
/// than that executable.
pub fn serve_binary() -> anyhow::Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND.get_or_init(|| locate().map_err(|e| format!("{e:#}"))).clone().map_err(anyhow::Error::msg)
}

fn locate() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("SCOREKEEPER_BIN") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("SCOREKEEPER_BIN={} is not a file", path.display());
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().context("locating the running executable")?;
    let mut dir = exe.parent().context("the executable has no directory")?.to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let binary = dir.join("scorekeeper");
    // Under plain `cargo test` the running cargo may still hold the build
    // directory's lock, so a nested build could wait forever: an existing
    // binary is taken as it is (`cargo test --workspace` builds it anyway).
    let nested_build_safe = std::env::var_os("NEXTEST_RUN_ID").is_some();
    if fresh(&binary, &exe) || (binary.is_file() && !nested_build_safe) {
        return Ok(binary);
    }
    build(&dir)?;
    if !binary.is_file() {
        bail!("cargo build did not produce {}", binary.display());
    }
    Ok(binary)
}

fn fresh(binary: &Path, exe: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(binary), modified(exe)) {
        (Some(binary), Some(exe)) => binary >= exe,
        _ => false,
    }
}

/// `cargo build --bin scorekeeper` into the profile directory `dir`.
fn build(dir: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet", "-p", "scorekeeper-cli", "--bin", "scorekeeper"]);
    if dir.file_name().is_some_and(|name| name == "release") {
        command.arg("--release");
    }
    if let Some(target) = dir.parent() {
        command.env("CARGO_TARGET_DIR", target);
    }
    if let Some(workspace) = Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(Path::parent) {
        command.current_dir(workspace);
    }
    let status = command.status().context("running cargo build for the scorekeeper binary")?;
    if !status.success() {
        bail!("cargo build -p scorekeeper-cli --bin scorekeeper failed ({status})");
    }
    Ok(())
}
