-- scores on a cluster: each node's local part, replicated between the
-- replicas of its shard. The columns and ORDER BY are those of
-- schema/003_scores.sql (a unit test compares them). The ZooKeeper path
-- names the database, so two databases on one cluster never share a
-- replicated table; {shard} and {replica} are the nodes' macros, filled in by
-- ClickHouse, {database} and {cluster} by analytics::cluster.
CREATE TABLE IF NOT EXISTS {database}.scores_local ON CLUSTER {cluster}
(
    customer_id          Int64,
    id                   Int64,
    scorecard_id         Int64,
    template_id          Int64,
    criterion_id         Int64,
    conversation_id      Int64,
    agent_id             String,
    is_process_scorecard UInt8,
    value                Float64,
    scorecard_created_at DateTime,
    updated_at           DateTime,
    version              UInt64,
    is_deleted           UInt8
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/scores_local', '{replica}', version)
ORDER BY (customer_id, id)
