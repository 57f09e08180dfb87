//! `scorekeeper-bench audit --scale s|m|l`: the drift audit on the reindex
//! bench's dataset and its ClickHouse mirror (`<db>_bench_reindex_<scale>`,
//! remade by a reindex job when it is not complete). Two timed audits of
//! every customer and all time, through the library entry point:
//!
//! * **in sync**: must find nothing;
//! * **drifted**: after `--drift N` rows of each kind were made to drift in
//!   each table, spread evenly over the id range (so over every day of the
//!   dataset): N rows bumped in Postgres (ClickHouse holds an older version:
//!   *stale*; for a scorecard its live scores go stale with it), N rows
//!   copied in Postgres only (*missing*), N rows copied in ClickHouse only
//!   under negative ids (*only_in_clickhouse*). The audit must name exactly
//!   those rows.
//!
//! What was injected is recorded in the Postgres table `bench_audit_drift`
//! in the same transaction, and undone afterwards (old versions restored
//! with the version trigger off, copies deleted, ClickHouse copies
//! tombstoned), also at the start of a run that follows an interrupted one:
//! every run starts from the same rows.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use scorekeeper_domain::audit::{AuditReport, AuditScope, AuditTable, DriftKind};
use scorekeeper_settings::{ClickHouseArgs, PostgresArgs};
use scorekeeper_sync::audit::{self, Findings, Quiet, Tuning};
use serde::Serialize;

use super::dataset::{DatasetRows, Scale};
use super::report;
use super::stack::{BenchDatabases, database_client};
use super::{baselines, reindex};

#[derive(Args)]
pub struct AuditBenchArgs {
    /// Dataset size: s (1.1M rows), m (5.6M), l (22.4M); shared with `bench reindex`.
    #[arg(long, value_enum, default_value = "s")]
    scale: Scale,
    /// Rows of each drift kind (missing, stale, only in ClickHouse) made in
    /// each table for the drifted audit.
    #[arg(long, default_value_t = 100)]
    drift: i64,
    /// Drifted days of each table narrowed at once (the audit's
    /// `Tuning::concurrent_days`; default as in the service).
    #[arg(long)]
    concurrent_days: Option<usize>,
    /// Also write the figures as JSON to this file (`-` for standard output).
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    postgres: PostgresArgs,
    #[command(flatten)]
    clickhouse: ClickHouseArgs,
}

/// One timed audit.
#[derive(Serialize)]
struct Run {
    seconds: f64,
    rows_checked: u64,
    rows_per_s: f64,
    drifted_buckets: u64,
    drifted_rows: u64,
    /// Per table: seconds until its walk was done (the three run at once).
    table_seconds: Vec<(AuditTable, f64)>,
    /// `/proc/loadavg` (1 minute) before and after: the machine is shared.
    load_before: f64,
    load_after: f64,
}

/// The figures of one bench run, as printed and written to JSON.
#[derive(Serialize)]
struct Figures {
    scale: &'static str,
    rows: DatasetRows,
    /// The ClickHouse mirror was incomplete and was reindexed first.
    mirror_reindexed: bool,
    in_sync: Run,
    in_sync_s: f64,
    drift_per_kind_and_table: i64,
    concurrent_days: usize,
    drifted: Run,
    drifted_s: f64,
    drifted_rows_injected: usize,
    drifted_rows_found: usize,
    /// Injected but not named by the audit.
    drifted_rows_missed: usize,
    /// Named by the audit but not injected.
    drifted_rows_unexpected: usize,
    cores: usize,
}

type Named = BTreeSet<(AuditTable, i64, DriftKind)>;

pub async fn run(args: AuditBenchArgs) -> anyhow::Result<()> {
    let scale = args.scale;
    if args.drift < 1 {
        bail!("--drift must be at least 1");
    }
    let (databases, rows, _) = reindex::open_dataset(&args.postgres, &args.clickhouse, scale).await?;
    undo_drift(&databases).await.context("undoing the drift of an earlier run")?;
    let mirror_reindexed = ensure_mirror(&databases, &rows).await?;

    let scope = AuditScope { customer_id: None, window: None };
    let mut tuning = Tuning::default();
    if let Some(days) = args.concurrent_days {
        tuning.concurrent_days = days;
    }
    eprintln!("audit, everything in sync…");
    let (in_sync, report, _) = timed_audit(&databases, &scope, tuning).await?;
    if report.drifted() > 0 {
        bail!(
            "the mirror differs from Postgres before any drift was made ({} rows; first: {:?}); \
             rerun `scorekeeper-bench reindex --scale {}` to remake it",
            report.drifted(),
            report.rows.first(),
            scale.name()
        );
    }

    eprintln!("making {} rows of each kind drift in each table…", args.drift);
    let expected = inject_drift(&databases, args.drift).await.context("making the drift")?;
    eprintln!("audit, {} rows drifted…", expected.len());
    let outcome = timed_audit(&databases, &scope, tuning).await;
    eprintln!("undoing the drift…");
    undo_drift(&databases).await.context("undoing the drift")?;
    let (drifted, _, findings) = outcome?;
    let found = named(&findings);
    if !findings.missing_ranges.is_empty() {
        bail!("the drifted audit counted whole ranges as missing: {:?}", findings.missing_ranges);
    }

    let figures = Figures {
        scale: scale.name(),
        rows,
        mirror_reindexed,
        in_sync_s: in_sync.seconds,
        in_sync,
        drift_per_kind_and_table: args.drift,
        concurrent_days: tuning.concurrent_days,
        drifted_s: drifted.seconds,
        drifted,
        drifted_rows_injected: expected.len(),
        drifted_rows_found: found.len(),
        drifted_rows_missed: expected.difference(&found).count(),
        drifted_rows_unexpected: found.difference(&expected).count(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    print(&figures);
    if let Some(path) = &args.json {
        report::write_json(path, &figures)?;
    }
    if found != expected {
        let missed: Vec<_> = expected.difference(&found).take(5).collect();
        let unexpected: Vec<_> = found.difference(&expected).take(5).collect();
        bail!(
            "the audit did not name exactly the injected rows: missed {missed:?}, unexpected {unexpected:?}"
        );
    }
    Ok(())
}

/// Reindexes into a fresh ClickHouse database unless it holds exactly
/// Postgres's rows per table (leftover tombstones of this bench's
/// negative-id copies aside). Returns whether it reindexed.
async fn ensure_mirror(databases: &BenchDatabases, rows: &DatasetRows) -> anyhow::Result<bool> {
    let expected = [rows.conversations, rows.scorecards, rows.scores];
    let mut complete = true;
    for (table, rows) in baselines::TABLES.iter().zip(expected) {
        let held: u64 = databases
            .clickhouse_client
            .query(&format!("SELECT count() FROM {table} FINAL WHERE id > 0"))
            .fetch_one()
            .await
            .with_context(|| format!("counting ClickHouse {table}"))?;
        complete &= held == rows as u64;
    }
    if complete {
        return Ok(false);
    }
    eprintln!("the ClickHouse mirror is incomplete: a reindex job through a worker process…");
    let analytics = reindex::fresh(&databases.clickhouse, "").await?;
    reindex::run_job(databases, &[], 1).await?;
    baselines::settle(&database_client(analytics.config())).await?;
    Ok(true)
}

async fn timed_audit(
    databases: &BenchDatabases,
    scope: &AuditScope,
    tuning: Tuning,
) -> anyhow::Result<(Run, AuditReport, Findings)> {
    let load_before = load_average();
    let started = Instant::now();
    let (report, findings) =
        audit::audit_tuned(&databases.store, &databases.analytics, scope, &Quiet, tuning).await?;
    let seconds = started.elapsed().as_secs_f64();
    let rows_checked: u64 = report.tables.iter().map(|t| t.rows_checked).sum();
    let run = Run {
        seconds,
        rows_checked,
        rows_per_s: rows_checked as f64 / seconds,
        drifted_buckets: report.tables.iter().map(|t| t.drifted_buckets).sum(),
        drifted_rows: report.drifted(),
        table_seconds: report
            .tables
            .iter()
            .map(|t| (t.table, Duration::from_millis(t.elapsed_ms).as_secs_f64()))
            .collect(),
        load_before,
        load_after: load_average(),
    };
    Ok((run, report, findings))
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn named(findings: &Findings) -> Named {
    findings.rows.iter().map(|r| (r.table, r.id, r.kind)).collect()
}

/// The record of the drift made, and the rows deleted from Postgres, kept
/// to be put back as they were.
const DRIFT_TABLES: &str = "CREATE TABLE IF NOT EXISTS bench_audit_drift (
    table_name text NOT NULL, id bigint NOT NULL, kind text NOT NULL,
    old_version bigint, old_updated_at timestamptz);
    CREATE TABLE IF NOT EXISTS bench_audit_saved_scorecards (LIKE scorecards);
    CREATE TABLE IF NOT EXISTS bench_audit_saved_links (LIKE process_scorecard_conversations);
    CREATE TABLE IF NOT EXISTS bench_audit_saved_scores (LIKE scores);";

fn table(name: &str) -> AuditTable {
    match name {
        "conversations" => AuditTable::Conversations,
        "scorecards" => AuditTable::Scorecards,
        _ => AuditTable::Scores,
    }
}

/// A row live as ClickHouse mirrors it (`y` the candidate row).
fn live(table: &str) -> &'static str {
    match table {
        "scores" => {
            "y.deleted_at IS NULL
             AND EXISTS (SELECT 1 FROM scorecards c WHERE c.id = y.scorecard_id AND c.deleted_at IS NULL)"
        }
        _ => "y.deleted_at IS NULL",
    }
}

/// The query of `$1` live rows of `table` spread evenly over its id range
/// (and so over its time), the `$2`-th (0, 1 or 2) of three interleaved
/// samples; scores of the scorecards `$3` are passed over.
fn sample_sql(table: &str) -> String {
    let besides = if table == "scores" {
        "AND y.scorecard_id <> ALL($3::bigint[])"
    } else {
        "AND $3::bigint[] IS NOT NULL"
    };
    format!(
        "SELECT DISTINCT x.id FROM generate_series(0, $1::bigint - 1) k
         CROSS JOIN (SELECT min(id) AS lo, max(id) AS hi FROM {table} WHERE id > 0) b
         CROSS JOIN LATERAL (SELECT y.id FROM {table} y
                             WHERE y.id >= b.lo + (b.hi - b.lo) * (3 * k + $2::bigint) / (3 * $1::bigint)
                               AND {live} {besides}
                             ORDER BY y.id LIMIT 1) x
         ORDER BY 1",
        live = live(table)
    )
}

/// Makes the drift (recording it first) and returns what the audit must name.
async fn inject_drift(databases: &BenchDatabases, n: i64) -> anyhow::Result<Named> {
    let mut client = databases.store.pool().get().await?;
    client.batch_execute(DRIFT_TABLES).await?;
    let tx = client.transaction().await?;
    let mut copies = Vec::new();
    // Scorecards drifted or deleted here: scores are sampled among others'.
    let mut touched: Vec<i64> = Vec::new();
    for name in baselines::TABLES {
        let sample = |lane: i64| {
            let touched = touched.clone();
            let tx = &tx;
            async move {
                let rows = tx.query(&sample_sql(name), &[&n, &lane, &touched]).await?;
                anyhow::Ok(rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<i64>>())
            }
        };
        // Stale: a new version in Postgres only (the trigger draws it).
        let stale = sample(0).await?;
        tx.execute(
            &format!(
                "INSERT INTO bench_audit_drift SELECT '{name}', id, 'stale', version, updated_at
                 FROM {name} WHERE id = ANY($1)"
            ),
            &[&stale],
        )
        .await?;
        tx.execute(&format!("UPDATE {name} SET version = version WHERE id = ANY($1)"), &[&stale]).await?;
        if name == "scorecards" {
            // A score's mirrored version is the greater of its own and its
            // scorecard's: the live scores of these scorecards are stale too.
            tx.execute(
                "INSERT INTO bench_audit_drift SELECT 'scores', id, 'stale', NULL, NULL
                 FROM scores WHERE scorecard_id = ANY($1) AND deleted_at IS NULL",
                &[&stale],
            )
            .await?;
        }
        // Missing: new rows in Postgres only, copies of others.
        let base = sample(1).await?;
        let gone = sample(2).await?;
        let insert = match name {
            "conversations" => {
                "INSERT INTO conversations (customer_id, external_id, agent_id, started_at, ended_at,
                                            message_count, created_at, updated_at)
                 SELECT customer_id, external_id || '-bench-audit', agent_id, started_at, ended_at,
                        message_count, created_at, updated_at
                 FROM conversations WHERE id = ANY($1) RETURNING id"
            }
            "scorecards" => {
                "INSERT INTO scorecards (customer_id, template_id, template_type, conversation_id, agent_id,
                                         source, total_score, created_at, updated_at)
                 SELECT customer_id, template_id, template_type, conversation_id, agent_id, 1, total_score,
                        created_at, updated_at
                 FROM scorecards WHERE id = ANY($1) RETURNING id"
            }
            // A score of the sampled score's scorecard for a criterion it
            // has no score of.
            _ => {
                "INSERT INTO scores (customer_id, scorecard_id, criterion_id, value, created_at, updated_at)
                 SELECT s.customer_id, s.scorecard_id,
                        (SELECT min(cr.id) FROM criteria cr WHERE NOT EXISTS
                            (SELECT 1 FROM scores o WHERE o.scorecard_id = s.scorecard_id AND o.criterion_id = cr.id)),
                        1, s.created_at, s.updated_at
                 FROM (SELECT DISTINCT ON (scorecard_id) * FROM scores WHERE id = ANY($1)) s RETURNING id"
            }
        };
        let added: Vec<i64> = tx.query(insert, &[&base]).await?.iter().map(|r| r.get(0)).collect();
        tx.execute(
            &format!(
                "INSERT INTO bench_audit_drift SELECT '{name}', unnest($1::bigint[]), 'missing', NULL, NULL"
            ),
            &[&added],
        )
        .await?;
        // Only in ClickHouse. Scorecards and scores: deleted from Postgres
        // by hand (a scorecard with its scores and links), kept aside to be
        // put back. Conversations, which scorecards hold on to: copies in
        // ClickHouse under negative ids (never a Postgres id).
        match name {
            "conversations" => {
                let negative: Vec<i64> = gone.iter().map(|id| -id).collect();
                tx.execute(
                    "INSERT INTO bench_audit_drift
                     SELECT 'conversations', unnest($1::bigint[]), 'only_in_clickhouse', NULL, NULL",
                    &[&negative],
                )
                .await?;
                copies.push(gone.clone());
            }
            "scorecards" => {
                // In this order: the scores (and links) name their scorecard.
                for sql in [
                    "INSERT INTO bench_audit_drift
                     SELECT 'scores', id, 'only_in_clickhouse', NULL, NULL FROM scores
                     WHERE scorecard_id = ANY($1) AND deleted_at IS NULL",
                    "WITH d AS (DELETE FROM scores WHERE scorecard_id = ANY($1) RETURNING *)
                     INSERT INTO bench_audit_saved_scores SELECT * FROM d",
                    "WITH d AS (DELETE FROM process_scorecard_conversations WHERE scorecard_id = ANY($1) RETURNING *)
                     INSERT INTO bench_audit_saved_links SELECT * FROM d",
                    "WITH d AS (DELETE FROM scorecards WHERE id = ANY($1) RETURNING *)
                     INSERT INTO bench_audit_saved_scorecards SELECT * FROM d",
                ] {
                    tx.execute(sql, &[&gone]).await?;
                }
            }
            _ => {
                tx.execute(
                    "WITH d AS (DELETE FROM scores WHERE id = ANY($1) RETURNING *)
                     INSERT INTO bench_audit_saved_scores SELECT * FROM d",
                    &[&gone],
                )
                .await?;
            }
        }
        if name != "conversations" {
            tx.execute(
                &format!(
                    "INSERT INTO bench_audit_drift SELECT '{name}', unnest($1::bigint[]), 'only_in_clickhouse', NULL, NULL"
                ),
                &[&gone],
            )
            .await?;
        }
        if name == "scorecards" {
            touched.extend(stale.iter().chain(&base).chain(&gone));
        }
    }
    let rows = tx.query("SELECT table_name, id, kind FROM bench_audit_drift", &[]).await?;
    tx.commit().await?;

    let version = databases.store.next_mirror_versions(1).await?[0];
    for ids in copies {
        copy_in_clickhouse(databases, "conversations", &ids, version, false).await?;
    }
    let mut expected = Named::new();
    for row in rows {
        let kind = match row.get::<_, &str>(2) {
            "stale" => DriftKind::Stale,
            "missing" => DriftKind::Missing,
            _ => DriftKind::OnlyInClickhouse,
        };
        expected.insert((table(row.get(0)), row.get(1), kind));
    }
    Ok(expected)
}

/// Writes ClickHouse's rows with ids `ids` of `table` again at `version`:
/// live under the negated id (`tombstone` false), or as tombstones of
/// themselves (the negative ids of earlier copies).
async fn copy_in_clickhouse(
    databases: &BenchDatabases,
    table: &str,
    ids: &[i64],
    version: i64,
    tombstone: bool,
) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let columns = baselines::columns(table);
    let select: Vec<String> = columns
        .iter()
        .map(|&column| match column {
            "id" if !tombstone => "-id".to_owned(),
            "version" => format!("toUInt64({version})"),
            "is_deleted" => format!("toUInt8({})", u8::from(tombstone)),
            other => other.to_owned(),
        })
        .collect();
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "INSERT INTO {table} ({}) SELECT {} FROM {table} FINAL WHERE id IN ({list})",
        columns.join(", "),
        select.join(", ")
    );
    databases
        .clickhouse_client
        .query(&sql)
        .execute()
        .await
        .with_context(|| format!("writing ClickHouse copies of {table}"))?;
    Ok(())
}

/// Undoes what `bench_audit_drift` records: ClickHouse's copies tombstoned
/// at a fresh version, Postgres's deleted rows put back as they were (ids
/// and versions too), its copies deleted, old versions restored with the
/// version trigger off (in one transaction, so no other session ever sees
/// it off).
async fn undo_drift(databases: &BenchDatabases) -> anyhow::Result<()> {
    let mut client = databases.store.pool().get().await?;
    client.batch_execute(DRIFT_TABLES).await?;
    let copies: Vec<i64> = client
        .query("SELECT id FROM bench_audit_drift WHERE kind = 'only_in_clickhouse' AND id < 0", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !copies.is_empty() {
        let version = databases.store.next_mirror_versions(1).await?[0];
        copy_in_clickhouse(databases, "conversations", &copies, version, true).await?;
    }
    let tx = client.transaction().await?;
    tx.batch_execute(
        "INSERT INTO scorecards OVERRIDING SYSTEM VALUE SELECT * FROM bench_audit_saved_scorecards;
         INSERT INTO process_scorecard_conversations SELECT * FROM bench_audit_saved_links;
         INSERT INTO scores OVERRIDING SYSTEM VALUE SELECT * FROM bench_audit_saved_scores;
         DELETE FROM bench_audit_saved_scores;
         DELETE FROM bench_audit_saved_links;
         DELETE FROM bench_audit_saved_scorecards;",
    )
    .await?;
    for name in ["scores", "scorecards", "conversations"] {
        tx.execute(
            &format!(
                "DELETE FROM {name} WHERE id IN
                 (SELECT id FROM bench_audit_drift WHERE table_name = '{name}' AND kind = 'missing')"
            ),
            &[],
        )
        .await?;
        tx.batch_execute(&format!(
            "ALTER TABLE {name} DISABLE TRIGGER {name}_version;
             UPDATE {name} t SET version = d.old_version, updated_at = d.old_updated_at
             FROM bench_audit_drift d
             WHERE d.table_name = '{name}' AND d.kind = 'stale' AND d.old_version IS NOT NULL AND t.id = d.id;
             ALTER TABLE {name} ENABLE TRIGGER {name}_version;"
        ))
        .await?;
    }
    tx.execute("DELETE FROM bench_audit_drift", &[]).await?;
    tx.commit().await?;
    Ok(())
}

fn print(f: &Figures) {
    let run = |r: &Run| {
        format!(
            "{:.2} s  {:.0}k rows/s  (load {:.1} -> {:.1}; {})",
            r.seconds,
            r.rows_per_s / 1000.0,
            r.load_before,
            r.load_after,
            r.table_seconds
                .iter()
                .map(|(t, s)| format!("{} {s:.1} s", t.name()))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let rows = vec![
        (
            "rows checked",
            format!(
                "{} ({} conv, {} scorecards, {} scores)",
                f.in_sync.rows_checked, f.rows.conversations, f.rows.scorecards, f.rows.scores
            ),
        ),
        ("mirror reindexed first", if f.mirror_reindexed { "yes" } else { "no (complete)" }.to_owned()),
        ("in sync", format!("{}  (target <= 20 s at scale l)", run(&f.in_sync))),
        ("drifted", format!("{}  ({} days of a table at once)", run(&f.drifted), f.concurrent_days)),
        (
            "drift made",
            format!(
                "{} per kind and table: {} rows (scores of stale scorecards included)",
                f.drift_per_kind_and_table, f.drifted_rows_injected
            ),
        ),
        ("drifted buckets", format!("{} (days)", f.drifted.drifted_buckets)),
        (
            "drifted rows found",
            format!(
                "{} of {} injected ({} missed, {} unexpected)",
                f.drifted_rows_found,
                f.drifted_rows_injected,
                f.drifted_rows_missed,
                f.drifted_rows_unexpected
            ),
        ),
    ];
    report::print_table(&format!("bench audit, scale {}, {} cores", f.scale, f.cores), &rows);
}
