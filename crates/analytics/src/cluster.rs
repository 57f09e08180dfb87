//! A ClickHouse cluster as the target (`CLICKHOUSE_CLUSTER`): the schema as
//! `ReplicatedReplacingMergeTree` local tables (`<table>_local`, one part per
//! shard, replicated within it) under `Distributed` tables that keep the
//! names readers and writers use (`sql/cluster`), and the setting that makes
//! inserts into them synchronous.
//!
//! An asynchronous Distributed insert answers OK while its rows wait in a
//! file queue on the node that took it; a write must only be acknowledged
//! once the shard holding its rows has them, so every insert on a cluster
//! carries the synchronous setting, and a shard that is down fails it.

use serde::Deserialize;

use crate::error::{AnalyticsError, Result};
use crate::{Analytics, schema};

const FILES: &[&str] = &[
    include_str!("../sql/cluster/000_database.sql"),
    include_str!("../sql/cluster/001_conversations_local.sql"),
    include_str!("../sql/cluster/002_scorecards_local.sql"),
    include_str!("../sql/cluster/003_scores_local.sql"),
    include_str!("../sql/cluster/004_distributed.sql"),
];

const SYNC_INSERT_SETTING: &str = include_str!("../sql/queries/sync_insert_setting.sql");

/// The setting names of a synchronous Distributed insert, newest first:
/// 23.x renamed `insert_distributed_sync` to `distributed_foreground_insert`.
const SYNC_INSERT_NAMES: [&str; 2] = ["distributed_foreground_insert", "insert_distributed_sync"];

/// The DDL of the cluster schema, in order: the database, the local tables,
/// the Distributed tables, with `database` and `cluster` filled in.
pub(crate) fn statements(database: &str, cluster: &str) -> Vec<String> {
    FILES
        .iter()
        .flat_map(|file| schema::split(file))
        .map(|s| s.replace("{database}", database).replace("{cluster}", cluster))
        .collect()
}

/// The table an `ALTER` on `table`'s rows must name: the local table on a
/// cluster (18.16 refuses `ALTER … ON CLUSTER` on a Distributed table).
pub(crate) fn local_table(table: &str) -> String {
    format!("{table}_local")
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct SettingName {
    name: String,
}

impl Analytics {
    /// The name under which this server knows the synchronous Distributed
    /// insert setting, asked once and remembered: a server refuses names it
    /// does not know.
    pub(crate) async fn sync_insert_setting(&self) -> Result<&'static str> {
        if let Some(name) = self.sync_insert.get() {
            return Ok(name);
        }
        let known: Vec<SettingName> =
            self.client().query(SYNC_INSERT_SETTING).fetch_all().await.map_err(AnalyticsError::from_query)?;
        let name = SYNC_INSERT_NAMES
            .into_iter()
            .find(|wanted| known.iter().any(|k| k.name == *wanted))
            .ok_or(AnalyticsError::NoSynchronousInsert)?;
        Ok(self.sync_insert.get_or_init(|| name))
    }

    /// The client inserts go through: on a cluster, with the synchronous
    /// Distributed insert setting on.
    pub(crate) async fn insert_client(&self) -> Result<clickhouse::Client> {
        if self.config.cluster.is_none() {
            return Ok(self.client.clone());
        }
        let setting = self.sync_insert_setting().await?;
        Ok(self.client.clone().with_setting(setting, "1"))
    }
}

#[cfg(test)]
mod tests {
    /// The columns of a CREATE TABLE: the text between its parentheses.
    fn columns(statement: &str) -> &str {
        let start = statement.find("\n(").expect("a column list");
        let end = statement.find("\n)").expect("the end of the column list");
        &statement[start..end]
    }

    #[test]
    fn local_tables_have_the_columns_and_order_of_the_single_server_schema() {
        let single: Vec<String> = crate::schema::statements().collect();
        let cluster = super::statements("db", "c");
        assert_eq!(cluster.len(), 1 + 3 + 3, "database, local tables, Distributed tables");
        for (table, local) in single.iter().zip(&cluster[1..4]) {
            assert_eq!(columns(local), columns(table), "{local}");
            assert!(
                local.ends_with("ORDER BY (customer_id, id)")
                    && table.ends_with("ORDER BY (customer_id, id)")
            );
            assert!(
                local.contains("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/"),
                "{local}"
            );
        }
    }

    #[test]
    fn every_name_is_filled_in_but_the_macros_of_the_nodes() {
        for statement in super::statements("db", "c") {
            let rest = statement.replace("{shard}", "").replace("{replica}", "");
            assert!(!rest.contains('{'), "{statement}");
            assert!(statement.contains(" ON CLUSTER c"), "{statement}");
        }
        let distributed = super::statements("db", "c").pop().unwrap();
        assert!(distributed.contains("Distributed(c, db, scores_local, sipHash64(customer_id, id))"));
    }
}
