-- Scorecards mirrored from Postgres, denormalised for analytics: template
-- type and is_process_scorecard (template type PROCESS) are carried on the
-- row. conversation_id is 0 for process scorecards.
CREATE TABLE IF NOT EXISTS scorecards
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
ENGINE = ReplacingMergeTree(version)
ORDER BY (customer_id, id)
