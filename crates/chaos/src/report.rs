//! One row per scenario: faults injected, requests made and acknowledged,
//! rows lost, drift after recovery, time to converge; printed as a table
//! and written as JSON.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::load::Ledger;
use crate::verify::Verdict;
use crate::world::World;

#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    pub scenario: u8,
    pub name: String,
    /// What was done, and whether it was real or simulated.
    pub faults: String,
    pub faults_injected: u64,
    pub requests_made: u64,
    pub requests_acked: u64,
    /// Requests that failed, by gRPC code.
    pub requests_failed: std::collections::BTreeMap<String, u64>,
    /// Acknowledged writes missing from Postgres or ClickHouse: must be 0.
    pub rows_lost: u64,
    /// Rows where ClickHouse differs from Postgres, plus the audit's drift: must be 0.
    pub drift: u64,
    /// From the last fault healed to zero drift and every acknowledged row visible.
    pub converge_s: f64,
    pub wall_s: f64,
    pub passed: bool,
    pub verdict: Verdict,
    /// Scenario-specific figures (jobs, attempts, tears, …).
    pub notes: Vec<String>,
    /// The serve processes' logs (removed by [`ScenarioReport::discard_logs`]).
    pub log_dir: String,
}

/// How a run ended, told the same way by every scenario: what the load
/// recorded, the final check, and the serve processes that exited though
/// nobody stopped them (`Fleet::exited`).
pub struct Run<'a> {
    pub ledger: &'a Ledger,
    pub verdict: Verdict,
    pub converge: Duration,
    pub wall: Duration,
    pub crashed: Vec<String>,
    /// The serve processes' logs.
    pub log_dir: &'a Path,
}

impl<'a> Run<'a> {
    /// The end of a run in `world` that began at `started`: `converged` is
    /// what `verify::converge` returned.
    pub fn new(
        world: &'a World,
        ledger: &'a Ledger,
        (verdict, converge): (Verdict, Duration),
        started: Instant,
        crashed: Vec<String>,
    ) -> Run<'a> {
        Run { ledger, verdict, converge, wall: started.elapsed(), crashed, log_dir: &world.log_dir }
    }
}

impl ScenarioReport {
    /// A report of `run`; it passes only when the verdict is clean, no
    /// process exited unasked and `ok` (the scenario's own checks). The
    /// exited processes and the verdict's examples follow `notes`.
    pub fn new(
        scenario: u8,
        name: &str,
        faults: String,
        faults_injected: u64,
        run: Run<'_>,
        ok: bool,
        mut notes: Vec<String>,
    ) -> ScenarioReport {
        let Run { ledger, verdict, converge, wall, crashed, log_dir } = run;
        notes.extend(crashed.iter().map(|c| format!("process exited unasked: {c}")));
        notes.extend(verdict.examples.iter().cloned());
        ScenarioReport {
            scenario,
            name: name.to_owned(),
            faults,
            faults_injected,
            requests_made: ledger.made,
            requests_acked: ledger.acked,
            requests_failed: ledger.failed_by_code.clone(),
            rows_lost: verdict.rows_lost(),
            drift: verdict.drift(),
            converge_s: converge.as_secs_f64(),
            wall_s: wall.as_secs_f64(),
            passed: ok && crashed.is_empty() && verdict.clean(),
            verdict,
            notes,
            log_dir: log_dir.display().to_string(),
        }
    }

    /// Removes the logs of a scenario that passed (a failed one keeps them
    /// for a look), unless `SK_CHAOS_KEEP_LOGS` is set.
    pub fn discard_logs(&self) {
        if self.passed && !self.log_dir.is_empty() && std::env::var_os("SK_CHAOS_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.log_dir);
        }
    }
}

/// A Markdown table of the reports.
pub fn table(reports: &[ScenarioReport]) -> String {
    let mut out = String::from(
        "| # | scenario | faults injected | requests made | acked | rows lost | drift after recovery | converge (s) | result |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        out.push_str(&format!(
            "| {} | {} | {} × {} | {} | {} | {} | {} | {:.1} | {} |\n",
            r.scenario,
            r.name,
            r.faults_injected,
            r.faults,
            r.requests_made,
            r.requests_acked,
            r.rows_lost,
            r.drift,
            r.converge_s,
            if r.passed { "pass" } else { "FAIL" }
        ));
    }
    out
}

pub fn write_json(path: &Path, reports: &[ScenarioReport]) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(reports)? + "\n")?;
    Ok(())
}
