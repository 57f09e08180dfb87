-- conversations on a cluster: each node's local part, replicated between the
-- replicas of its shard. The columns and ORDER BY are those of
-- schema/001_conversations.sql (a unit test compares them). The ZooKeeper path
-- names the database, so two databases on one cluster never share a
-- replicated table; {shard} and {replica} are the nodes' macros, filled in by
-- ClickHouse, {database} and {cluster} by analytics::cluster.
CREATE TABLE IF NOT EXISTS {database}.conversations_local ON CLUSTER {cluster}
(
    customer_id   Int64,
    id            Int64,
    external_id   String,
    agent_id      String,
    started_at    DateTime,
    ended_at      DateTime,
    message_count UInt32,
    updated_at    DateTime,
    version       UInt64,
    is_deleted    UInt8
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/conversations_local', '{replica}', version)
ORDER BY (customer_id, id)
