//! Finding the `scorekeeper` binary that tests, benchmarks and fault runs
//! start as `serve` processes.
//!
//! `CARGO_BIN_EXE_*` exists only inside the cli crate (its own tests use
//! that), so everyone else looks for the binary beside their own
//! executable: tests run from `target/<profile>/deps/`, binaries (the bench,
//! the chaos runner) from `target/<profile>/`. A binary older than the
//! running executable may predate changes to the libraries both are built
//! from, so under nextest (which has released cargo's lock when tests run)
//! it is rebuilt with `cargo build` first; `cargo nextest run --workspace`
//! and `cargo test --workspace` build it anyway, for the cli's own tests.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{Arc, OnceLock};

/// The binary could not be found or built.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error("SCOREKEEPER_BIN={} is not a file", .0.display())]
    NotAFile(PathBuf),
    #[error("locating the running executable")]
    NoExecutable(#[source] std::io::Error),
    #[error("running cargo build for the scorekeeper binary")]
    Cargo(#[source] std::io::Error),
    #[error("cargo build -p scorekeeper-cli --bin scorekeeper failed ({0})")]
    BuildFailed(ExitStatus),
    #[error("cargo build did not produce {}", .0.display())]
    NotBuilt(PathBuf),
}

/// Shared: the lookup runs once per process and every caller gets its
/// outcome.
pub type Result<T, E = Arc<BinaryError>> = std::result::Result<T, E>;

/// The `scorekeeper` binary: `SCOREKEEPER_BIN` if set, else the one in the
/// target directory of the running executable, built when missing or (under
/// nextest) older than that executable.
pub fn serve_binary() -> Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf>> = OnceLock::new();
    FOUND.get_or_init(|| locate().map_err(Arc::new)).clone()
}

fn locate() -> Result<PathBuf, BinaryError> {
    if let Some(path) = std::env::var_os("SCOREKEEPER_BIN") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(BinaryError::NotAFile(path));
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().map_err(BinaryError::NoExecutable)?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
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
        return Err(BinaryError::NotBuilt(binary));
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
fn build(dir: &Path) -> Result<(), BinaryError> {
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
    let status = command.status().map_err(BinaryError::Cargo)?;
    if !status.success() {
        return Err(BinaryError::BuildFailed(status));
    }
    Ok(())
}
