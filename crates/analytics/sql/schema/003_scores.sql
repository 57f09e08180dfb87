-- Per-criterion scores mirrored from Postgres, carrying what analytics
-- groups by (agent, template, conversation, process or not, scorecard time)
-- so that dashboards need no join.
CREATE TABLE IF NOT EXISTS scores
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
ENGINE = ReplacingMergeTree(version)
ORDER BY (customer_id, id)
