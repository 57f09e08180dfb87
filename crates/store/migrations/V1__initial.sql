-- scorekeeper's Postgres schema: the source of truth.
--
-- Every row that ClickHouse mirrors (conversations, scorecards, scores)
-- carries `version`, drawn from the one sequence `mirror_version`: set on
-- insert by the column default and on every update by a trigger, so it only
-- grows, also for rows written without the API (bulk imports, hand fixes).
-- Deletes are soft (`deleted_at`) so that every path can send a tombstone.

CREATE SEQUENCE mirror_version AS bigint;

CREATE FUNCTION bump_mirror_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := nextval('mirror_version');
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TABLE customers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- API tokens are stored as SHA-256 of the token; the token itself is shown
-- once, when created.
CREATE TABLE api_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    token_hash  bytea NOT NULL UNIQUE,
    is_admin    boolean NOT NULL DEFAULT false,
    label       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE conversations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    external_id text NOT NULL,
    agent_id    text NOT NULL,
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz NOT NULL,
    message_count integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    version     bigint NOT NULL DEFAULT nextval('mirror_version'),
    UNIQUE (customer_id, external_id)
);
CREATE INDEX conversations_customer_started ON conversations (customer_id, started_at, id);
CREATE INDEX conversations_updated ON conversations (updated_at, id);
CREATE TRIGGER conversations_version BEFORE UPDATE ON conversations
    FOR EACH ROW EXECUTE FUNCTION bump_mirror_version();

-- The transcript. Not mirrored to ClickHouse (message_count is).
CREATE TABLE messages (
    conversation_id bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq         integer NOT NULL,
    speaker     smallint NOT NULL,   -- 1 agent, 2 customer (proto Speaker)
    text        text NOT NULL,
    offset_ms   bigint NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

CREATE TABLE scorecard_templates (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id   bigint NOT NULL REFERENCES customers (id),
    name          text NOT NULL,
    -- 1 conversation, 2 process; NULL on legacy rows, which count as conversation.
    template_type smallint CHECK (template_type IN (1, 2)),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scorecard_templates_customer ON scorecard_templates (customer_id, id);

CREATE TABLE criteria (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    template_id bigint NOT NULL REFERENCES scorecard_templates (id),
    position    integer NOT NULL,
    name        text NOT NULL,
    weight      double precision NOT NULL CHECK (weight > 0),
    min_value   double precision NOT NULL,
    max_value   double precision NOT NULL,
    autoqa_rule jsonb,              -- domain::autoqa::Rule, NULL for manual-only criteria
    CHECK (min_value < max_value),
    UNIQUE (template_id, position)
);

CREATE TABLE scorecards (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id     bigint NOT NULL REFERENCES customers (id),
    template_id     bigint NOT NULL REFERENCES scorecard_templates (id),
    -- Copied from the template so that readers need no join; 1 or 2.
    template_type   smallint NOT NULL CHECK (template_type IN (1, 2)),
    -- Set exactly for conversation scorecards.
    conversation_id bigint REFERENCES conversations (id),
    agent_id        text NOT NULL,
    source          smallint NOT NULL CHECK (source IN (1, 2)),  -- 1 manual, 2 autoqa
    total_score     double precision NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    version         bigint NOT NULL DEFAULT nextval('mirror_version'),
    CHECK ((template_type = 1) = (conversation_id IS NOT NULL))
);
CREATE INDEX scorecards_customer_created ON scorecards (customer_id, created_at, id);
CREATE INDEX scorecards_conversation ON scorecards (conversation_id) WHERE conversation_id IS NOT NULL;
CREATE INDEX scorecards_updated ON scorecards (updated_at, id);
-- AutoQA keeps one scorecard per (conversation, template), never a duplicate.
CREATE UNIQUE INDEX scorecards_one_autoqa ON scorecards (conversation_id, template_id) WHERE source = 2;
CREATE TRIGGER scorecards_version BEFORE UPDATE ON scorecards
    FOR EACH ROW EXECUTE FUNCTION bump_mirror_version();

-- Conversations a process scorecard covers.
CREATE TABLE process_scorecard_conversations (
    scorecard_id    bigint NOT NULL REFERENCES scorecards (id),
    conversation_id bigint NOT NULL REFERENCES conversations (id),
    PRIMARY KEY (scorecard_id, conversation_id)
);
CREATE INDEX process_scorecard_conversations_conversation ON process_scorecard_conversations (conversation_id);

-- One row per (scorecard, criterion). A criterion dropped by an update, or a
-- deleted scorecard, leaves its scores soft-deleted so ClickHouse gets tombstones.
CREATE TABLE scores (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES customers (id),
    scorecard_id bigint NOT NULL REFERENCES scorecards (id),
    criterion_id bigint NOT NULL REFERENCES criteria (id),
    value        double precision NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz,
    version      bigint NOT NULL DEFAULT nextval('mirror_version'),
    UNIQUE (scorecard_id, criterion_id)
);
CREATE INDEX scores_updated ON scores (updated_at, id);
CREATE TRIGGER scores_version BEFORE UPDATE ON scores
    FOR EACH ROW EXECUTE FUNCTION bump_mirror_version();

-- Transactional outbox: written in the same transaction as the scorecard
-- change; the dispatcher in `serve` writes ClickHouse after commit and
-- deletes the entry once ClickHouse acknowledged. At-least-once.
CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id     bigint NOT NULL,
    scorecard_id    bigint NOT NULL,
    -- Which write path queued it, for metrics: 'api' or 'autoqa'.
    origin          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id);

-- Wake dispatchers as soon as an entry commits (they also poll).
CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('scorekeeper_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox();
