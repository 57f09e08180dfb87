//! What a reindex is measured against, on the same rows:
//!
//! * the **peer**: the shell pipeline a user would write, `psql COPY (SELECT
//!   …) TO STDOUT | curl … INSERT … FORMAT TabSeparated`, table by table,
//!   producing exactly the columns of the ClickHouse tables;
//! * the **limit**: the two halves alone: Postgres reading the columns the
//!   mirror needs, each table apart, to /dev/null (`COPY … (FORMAT binary)`),
//!   and ClickHouse ingesting the final rows from a RowBinary dump;
//!
//! and how the outcome is checked: per table, the row count and a checksum
//! of every column of the final rows.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clickhouse::Row;
use scorekeeper_analytics::ClickHouseConfig;
use scorekeeper_analytics::rows::{ConversationRow, ScoreRow, ScorecardRow};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cpu::{CpuSample, CpuUse};

/// The mirrored tables, in the order every writer fills them.
pub const TABLES: [&str; 3] = ["conversations", "scorecards", "scores"];

/// A mirrored table's ClickHouse columns, in row order.
pub fn columns(table: &str) -> &'static [&'static str] {
    match table {
        "conversations" => ConversationRow::COLUMN_NAMES,
        "scorecards" => ScorecardRow::COLUMN_NAMES,
        _ => ScoreRow::COLUMN_NAMES,
    }
}

/// Whole seconds since the epoch, as ClickHouse `DateTime` takes them in text.
fn epoch(column: &str) -> String {
    format!("floor(extract(epoch FROM {column}))::bigint")
}

/// The peer's SELECT of a table: the ClickHouse row, column for column, as
/// `COPY` text (which ClickHouse reads as TabSeparated).
fn peer_select(table: &str) -> String {
    match table {
        "conversations" => format!(
            "SELECT customer_id, id, external_id, agent_id, {}, {}, message_count, {}, version, \
             (deleted_at IS NOT NULL)::int FROM conversations",
            epoch("started_at"),
            epoch("ended_at"),
            epoch("updated_at")
        ),
        "scorecards" => format!(
            "SELECT customer_id, id, template_id, template_type, (template_type = 2)::int, \
             coalesce(conversation_id, 0), agent_id, source, total_score, {}, {}, version, \
             (deleted_at IS NOT NULL)::int FROM scorecards",
            epoch("created_at"),
            epoch("updated_at")
        ),
        _ => format!(
            "SELECT s.customer_id, s.id, s.scorecard_id, c.template_id, s.criterion_id, \
             coalesce(c.conversation_id, 0), c.agent_id, (c.template_type = 2)::int, s.value, {}, {}, \
             greatest(s.version, c.version), (s.deleted_at IS NOT NULL OR c.deleted_at IS NOT NULL)::int \
             FROM scores s JOIN scorecards c ON c.id = s.scorecard_id",
            epoch("c.created_at"),
            epoch("greatest(s.updated_at, c.updated_at)")
        ),
    }
}

/// What the mirror needs of a table, read apart (no join).
fn source_select(table: &str) -> &'static str {
    match table {
        "conversations" => {
            "SELECT customer_id, id, external_id, agent_id, started_at, ended_at, message_count, updated_at, \
             version, deleted_at IS NOT NULL FROM conversations"
        }
        "scorecards" => {
            "SELECT customer_id, id, template_id, template_type, conversation_id, agent_id, source, \
             total_score, created_at, updated_at, version, deleted_at IS NOT NULL FROM scorecards"
        }
        _ => {
            "SELECT customer_id, id, scorecard_id, criterion_id, value, updated_at, version, \
             deleted_at IS NOT NULL FROM scores"
        }
    }
}

/// Runs `script` under `bash -o pipefail` with `env`, failing with its
/// standard error if it fails.
async fn shell(script: &str, env: &[(&str, String)]) -> anyhow::Result<()> {
    let mut command = tokio::process::Command::new("bash");
    command.args(["-o", "pipefail", "-c", script]).stdin(Stdio::null()).stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().await.context("running bash")?;
    if !output.status.success() {
        bail!("`{script}` failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The peer pipeline, table by table; returns its wall time.
pub async fn peer(database_url: &str, clickhouse: &ClickHouseConfig) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for table in TABLES {
        let insert = format!("INSERT INTO {table} FORMAT TabSeparated");
        let url = format!(
            "{}/?database={}&user={}&password={}&query={}",
            clickhouse.url.trim_end_matches('/'),
            clickhouse.database,
            url_encode(&clickhouse.user),
            url_encode(&clickhouse.password),
            url_encode(&insert)
        );
        shell(
            r#"psql "$PGURL" -X -q -v ON_ERROR_STOP=1 -c "$COPY_SQL" | curl -sS --fail-with-body -X POST -T - "$INSERT_URL""#,
            &[
                ("PGURL", database_url.to_owned()),
                ("COPY_SQL", format!("COPY ({}) TO STDOUT", peer_select(table))),
                ("INSERT_URL", url),
            ],
        )
        .await
        .with_context(|| format!("the peer pipeline of {table}"))?;
    }
    Ok(started.elapsed())
}

/// Postgres reading what the mirror needs, each table apart, to /dev/null.
pub async fn limit_read(database_url: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for table in TABLES {
        shell(
            r#"psql "$PGURL" -X -q -v ON_ERROR_STOP=1 -c "$COPY_SQL" > /dev/null"#,
            &[
                ("PGURL", database_url.to_owned()),
                ("COPY_SQL", format!("COPY ({}) TO STDOUT (FORMAT binary)", source_select(table))),
            ],
        )
        .await
        .with_context(|| format!("reading {table}"))?;
    }
    Ok(started.elapsed())
}

/// ClickHouse ingesting the final rows of `from` into `into` (same schema)
/// from a RowBinary dump in `dump_dir`, with the client the service uses;
/// only the inserts are timed, and only their CPU is counted (the dumps
/// cost ClickHouse and this process as much again, which the limit does
/// not include).
pub async fn limit_write(
    from: &clickhouse::Client,
    into: &clickhouse::Client,
    dump_dir: &Path,
) -> anyhow::Result<(Duration, CpuUse)> {
    let mut elapsed = Duration::ZERO;
    let mut cpu = CpuUse::default();
    for table in TABLES {
        let path = dump_dir.join(format!("{table}.rowbinary"));
        let mut dump = tokio::fs::File::create(&path).await?;
        let mut cursor = from.query(&format!("SELECT * FROM {table} FINAL")).fetch_bytes("RowBinary")?;
        while let Some(chunk) = cursor.next().await? {
            dump.write_all(&chunk).await?;
        }
        dump.flush().await?;
        drop(dump);

        let mut file = tokio::fs::File::open(&path).await?;
        let mut buffer = vec![0u8; 1 << 20];
        let (started, cpu_before) = (Instant::now(), CpuSample::now(&[]));
        let mut insert = into.insert_formatted_with(format!("INSERT INTO {table} FORMAT RowBinary"));
        loop {
            let read = file.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            insert.send(Bytes::copy_from_slice(&buffer[..read])).await?;
        }
        insert.end().await?;
        elapsed += started.elapsed();
        cpu += CpuSample::now(&[]).since(&cpu_before);
        tokio::fs::remove_file(&path).await?;
    }
    Ok((elapsed, cpu))
}

/// Per table: final row count and a checksum of every column.
pub async fn checksums(client: &clickhouse::Client) -> anyhow::Result<Vec<(u64, u64)>> {
    let mut sums = Vec::new();
    for table in TABLES {
        let sql =
            format!("SELECT count(), sum(cityHash64({})) FROM {table} FINAL", columns(table).join(", "));
        sums.push(client.query(&sql).fetch_one::<(u64, u64)>().await?);
    }
    Ok(sums)
}

/// Waits until ClickHouse runs no merges (after a bulk load), so that the
/// next measurement does not share the machine with them.
pub async fn settle(client: &clickhouse::Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let merges: u64 = client.query("SELECT count() FROM system.merges").fetch_one().await?;
        if merges == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_query_strings() {
        assert_eq!(url_encode("INSERT INTO t FORMAT X"), "INSERT%20INTO%20t%20FORMAT%20X");
    }
}
