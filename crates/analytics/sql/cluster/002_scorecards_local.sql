-- scorecards on a cluster: each node's local part, replicated between the
-- replicas of its shard. The columns and ORDER BY are those of
-- schema/002_scorecards.sql (a unit test compares them). The ZooKeeper path
-- names the database, so two databases on one cluster never share a
-- replicated table; {shard} and {replica} are the nodes' macros, filled in by
-- ClickHouse, {database} and {cluster} by analytics::cluster.
CREATE TABLE IF NOT EXISTS {database}.scorecards_local ON CLUSTER {cluster}
(
    customer_id          Int64,
    id                   Int64,
    template_id          Int64,
    template_type        UInt8,
    is_process_scorecard UInt8,
    conversation_id      Int64,
    agent_id             String,
    source               UInt8,
    total_score          Float64,
    created_at           DateTime,
    updated_at           DateTime,
    version              UInt64,
    is_deleted           UInt8
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/scorecards_local', '{replica}', version)
ORDER BY (customer_id, id)
