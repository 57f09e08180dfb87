-- Tokens an operator can list and revoke, and whose revocation every serve
-- process hears at once.
--
-- prefix: the token's first characters (`sk_` and 8 hex digits), shown by
-- `scorekeeper token list`, accepted by `token revoke` and logged on a
-- failed authentication; the other 56 hex digits stay secret. Tokens made
-- before this migration have none (only their hash was kept): they are
-- listed and revoked by id.
-- last_used_at: refreshed when a serve process looks the token up again
-- (its cache entry expired), at most once a minute, never per request.
ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS prefix text;
ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS last_used_at timestamptz;
CREATE INDEX IF NOT EXISTS api_tokens_prefix ON api_tokens (prefix);
CREATE INDEX IF NOT EXISTS api_tokens_customer ON api_tokens (customer_id, id);

-- Serve processes cache a token's principal for up to 30 s; a revocation
-- (or any change of what the token grants, or its deletion) notifies
-- `scorekeeper_tokens` with the token's id, and each process drops that
-- entry. A trigger rather than a NOTIFY in the revoking code, so that a
-- revocation by hand in SQL is heard too. A notifying transaction takes a
-- database-wide lock at commit (see V5); revocations are rare, and the
-- frequent write to this table (`last_used_at`) does not fire it.
CREATE OR REPLACE FUNCTION notify_api_token_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('scorekeeper_tokens', OLD.id::text);
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS api_tokens_changed ON api_tokens;
CREATE TRIGGER api_tokens_changed
    AFTER UPDATE OF revoked_at, is_admin, customer_id, token_hash OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION notify_api_token_changed();
