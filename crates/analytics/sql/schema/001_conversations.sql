-- Conversations mirrored from Postgres. One row per (customer_id, id); the
-- highest version wins at merge time and under FINAL. is_deleted = 1 is a
-- tombstone. No PARTITION BY: a row whose partition key changed would land in
-- another partition, where ReplacingMergeTree can never replace it.
CREATE TABLE IF NOT EXISTS conversations
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
ENGINE = ReplacingMergeTree(version)
ORDER BY (customer_id, id)
