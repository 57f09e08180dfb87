-- Statistics on the drift audit's hour bucket (store::audit), as V6 did for
-- the day: the audit now sums each table once per audit by customer and
-- hour, and without these statistics Postgres takes the hour expression for
-- as many groups as rows and plans a serial, spilling aggregate instead of
-- a parallel hash aggregate of ~10k groups. The expressions must stay
-- exactly those store::audit writes.
CREATE STATISTICS conversations_audit_hour
    ON (LEAST(GREATEST(floor(date_part('epoch', started_at))::bigint, 0), 4294967295) / 3600)
    FROM conversations;
CREATE STATISTICS scorecards_audit_hour
    ON (LEAST(GREATEST(floor(date_part('epoch', created_at))::bigint, 0), 4294967295) / 3600)
    FROM scorecards;
ANALYZE conversations;
ANALYZE scorecards;
