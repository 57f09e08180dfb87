-- Statistics on the drift audit's day bucket (store::audit): whole seconds
-- since the epoch, clamped to ClickHouse's DateTime, divided by 86400. The
-- audit groups whole tables by this expression; without these statistics
-- Postgres takes it for as many groups as rows and plans a serial or
-- sorting aggregate, with them a parallel hash aggregate. The expressions
-- must stay exactly those store::audit writes.
CREATE STATISTICS conversations_audit_day
    ON (LEAST(GREATEST(floor(date_part('epoch', started_at))::bigint, 0), 4294967295) / 86400)
    FROM conversations;
CREATE STATISTICS scorecards_audit_day
    ON (LEAST(GREATEST(floor(date_part('epoch', created_at))::bigint, 0), 4294967295) / 86400)
    FROM scorecards;
ANALYZE conversations;
ANALYZE scorecards;
