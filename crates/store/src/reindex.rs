//! Keyset-paged readers of the rows in a reindex scope, in id order after a
//! checkpoint, deleted rows included (they go out as tombstones): what
//! reindex jobs and batch indexing read. Memory is bounded by the page size
//! whatever the range.

use chrono::{DateTime, Utc};
use scorekeeper_domain::TemplateType;
use scorekeeper_domain::mirror::{ConversationRecord, ScoreRecord, ScorecardRecord};
use scorekeeper_domain::reindex::{KeyRange, ReindexActivity, ReindexScope, TimeBase};
use tokio_postgres::types::ToSql;

use crate::Store;
use crate::error::Result;
use crate::mirror::{
    CONVERSATION_SELECT, SCORE_COLUMNS, SCORECARD_COLUMNS_BESIDE_SCORE, SCORECARD_SELECT, ScorecardNames,
    conversation_record, score_columns, scorecard_record, scorecard_record_named,
};

/// Which timestamp of a scorecard a window applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScorecardTime {
    CreatedAt,
    UpdatedAt,
}

/// The scope as query parameters `$1..$4`: customer, window start, window
/// end, conversation ids (NULL when not restricted).
struct ScopeParams {
    customer: Option<i64>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    ids: Option<Vec<i64>>,
}

impl ScopeParams {
    fn new(scope: &ReindexScope) -> ScopeParams {
        ScopeParams {
            customer: scope.customer_id.map(|c| c.0),
            start: scope.window.map(|w| w.start),
            end: scope.window.map(|w| w.end),
            ids: (!scope.conversation_ids.is_empty())
                .then(|| scope.conversation_ids.iter().map(|c| c.0).collect()),
        }
    }

    fn with<'a>(&'a self, rest: &[&'a (dyn ToSql + Sync)]) -> Vec<&'a (dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.customer, &self.start, &self.end, &self.ids];
        params.extend_from_slice(rest);
        params
    }
}

/// `AND` clauses restricting a table to the scope's customer and window.
fn customer_and_window(customer_column: &str, time_column: &str) -> String {
    format!(
        "($1::bigint IS NULL OR {customer_column} = $1) \
         AND ($2::timestamptz IS NULL OR {time_column} >= $2) AND ($3::timestamptz IS NULL OR {time_column} < $3)"
    )
}

/// Scorecards (alias `c`) of the scope's conversations: a conversation
/// scorecard by its conversation, a process scorecard by its links.
const SCORECARD_OF_CONVERSATIONS: &str = "($4::bigint[] IS NULL OR c.conversation_id = ANY($4) OR EXISTS (\
     SELECT 1 FROM process_scorecard_conversations l WHERE l.scorecard_id = c.id AND l.conversation_id = ANY($4)))";

impl Store {
    /// Conversations in scope with id in `keys` (the first `limit` of
    /// them, in id order); the window applies to the start time or the last
    /// update, by the scope's time base.
    pub async fn conversations_in_scope(
        &self,
        scope: &ReindexScope,
        keys: KeyRange,
        limit: usize,
    ) -> Result<Vec<ConversationRecord>> {
        let time = match scope.window.map(|w| w.base) {
            Some(TimeBase::UpdatedAt) => "updated_at",
            _ => "started_at",
        };
        let params = ScopeParams::new(scope);
        let limit = limit as i64;
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!(
                    "{CONVERSATION_SELECT} WHERE {} AND ($4::bigint[] IS NULL OR id = ANY($4))
                       AND id > $5 AND ($7::bigint IS NULL OR id <= $7)
                     ORDER BY id LIMIT $6",
                    customer_and_window("customer_id", time)
                ),
                &params.with(&[&keys.after, &limit, &keys.until]),
            )
            .await?;
        rows.iter().map(conversation_record).collect()
    }

    /// Scorecards of `template_type` in scope with id in `keys`, the window
    /// on `time`, in id order (their scores: `Store::scores_of`).
    pub async fn reindex_scorecards(
        &self,
        scope: &ReindexScope,
        template_type: TemplateType,
        time: ScorecardTime,
        keys: KeyRange,
        limit: usize,
    ) -> Result<Vec<ScorecardRecord>> {
        let time = match time {
            ScorecardTime::CreatedAt => "c.created_at",
            ScorecardTime::UpdatedAt => "c.updated_at",
        };
        let params = ScopeParams::new(scope);
        let (kind, limit) = (template_type.number(), limit as i64);
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!(
                    "{SCORECARD_SELECT} WHERE c.template_type = $7 AND {} AND {SCORECARD_OF_CONVERSATIONS}
                       AND c.id > $5 AND ($8::bigint IS NULL OR c.id <= $8) ORDER BY c.id LIMIT $6",
                    customer_and_window("c.customer_id", time)
                ),
                &params.with(&[&keys.after, &limit, &kind, &keys.until]),
            )
            .await?;
        rows.iter().map(scorecard_record).collect()
    }

    /// Scores of `template_type` scorecards in scope whose own last update
    /// lies in the window, with id > `after`: catches scores changed without
    /// their scorecard (bulk fixes).
    pub async fn reindex_changed_scores(
        &self,
        scope: &ReindexScope,
        template_type: TemplateType,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ScoreRecord>> {
        let params = ScopeParams::new(scope);
        let (kind, limit) = (template_type.number(), limit as i64);
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {SCORE_COLUMNS}, {SCORECARD_COLUMNS_BESIDE_SCORE} FROM scores s JOIN scorecards c ON c.id = s.scorecard_id
                     WHERE c.template_type = $7 AND {} AND {SCORECARD_OF_CONVERSATIONS}
                       AND s.id > $5 ORDER BY s.id LIMIT $6",
                    customer_and_window("s.customer_id", "s.updated_at")
                ),
                &params.with(&[&after, &limit, &kind]),
            )
            .await?;
        rows.iter()
            .map(|row| {
                let scorecard = scorecard_record_named(row, &ScorecardNames::BESIDE_SCORE)?;
                Ok(ScoreRecord::of(&scorecard, score_columns(row)?))
            })
            .collect()
    }
}

impl Store {
    /// The lowest and highest key of the rows whose keys a partition of
    /// `activity` ranges over, in a scope by start time (conversations by
    /// their start, process scorecards by their creation); `None` when the
    /// scope has none. What the reindex splits into partitions.
    pub async fn reindex_key_bounds(
        &self,
        scope: &ReindexScope,
        activity: ReindexActivity,
    ) -> Result<Option<(i64, i64)>> {
        let sql = match activity {
            ReindexActivity::Conversations => format!(
                "SELECT min(id), max(id) FROM conversations WHERE {} AND ($4::bigint[] IS NULL OR id = ANY($4)) AND $5::smallint IS NOT NULL",
                customer_and_window("customer_id", "started_at")
            ),
            ReindexActivity::ProcessScorecards => format!(
                "SELECT min(c.id), max(c.id) FROM scorecards c
                 WHERE c.template_type = $5 AND {} AND {SCORECARD_OF_CONVERSATIONS}",
                customer_and_window("c.customer_id", "c.created_at")
            ),
        };
        let params = ScopeParams::new(scope);
        let kind = activity.template_type().number();
        let client = self.pool().get().await?;
        let row = client.query_one(&sql, &params.with(&[&kind])).await?;
        let (min, max): (Option<i64>, Option<i64>) = (row.try_get(0)?, row.try_get(1)?);
        Ok(min.zip(max))
    }

    /// About how many rows `activity` will copy for `scope`, counted the way
    /// its passes read them (for progress and ETA): conversations and
    /// scorecards exactly, their scores estimated (see below); rows written
    /// meanwhile add to the difference.
    pub async fn reindex_estimate(&self, scope: &ReindexScope, activity: ReindexActivity) -> Result<i64> {
        let by_update = scope.by_update();
        let kind = activity.template_type().number();
        let scorecards_time = if by_update { "c.updated_at" } else { "c.created_at" };
        // The activity's scorecards in scope, as `FROM … WHERE …` on `c`;
        // by start time, through their conversations in scope.
        let scorecards = match (activity, by_update) {
            (ReindexActivity::Conversations, false) => format!(
                "FROM scorecards c JOIN conversations v ON v.id = c.conversation_id
                 WHERE c.template_type = $5 AND {} AND ($4::bigint[] IS NULL OR v.id = ANY($4))",
                customer_and_window("v.customer_id", "v.started_at")
            ),
            _ => format!(
                "FROM scorecards c WHERE c.template_type = $5 AND {} AND {SCORECARD_OF_CONVERSATIONS}",
                customer_and_window("c.customer_id", scorecards_time)
            ),
        };
        let conversations = match activity {
            ReindexActivity::Conversations => format!(
                "(SELECT count(*) FROM conversations WHERE {} AND ($4::bigint[] IS NULL OR id = ANY($4)))",
                customer_and_window("customer_id", if by_update { "updated_at" } else { "started_at" })
            ),
            ReindexActivity::ProcessScorecards => "0".to_owned(),
        };
        // Their scores: counting them exactly costs as much as a third of
        // the copy, so they are estimated from the planner's row counts
        // (scores per scorecard) once the tables have statistics, and
        // counted while they have none (small tables). The scorecards are
        // counted once, unmaterialised: a CTE read twice cost 4 times more.
        let of_scorecards = format!(
            "CASE WHEN s.reltuples > 0 AND c.reltuples > 0
                  THEN round(n.scorecards * s.reltuples / c.reltuples)::bigint
                  ELSE (SELECT count(*) FROM scores WHERE scorecard_id IN (SELECT c.id {scorecards})) END"
        );
        // By update, also every score updated in the window (sent again in
        // a pass of its own).
        let updated_scores = if by_update {
            format!(
                "(SELECT count(*) FROM scores s JOIN scorecards c ON c.id = s.scorecard_id
                 WHERE c.template_type = $5 AND {} AND {SCORECARD_OF_CONVERSATIONS})",
                customer_and_window("s.customer_id", "s.updated_at")
            )
        } else {
            "0".to_owned()
        };
        let sql = format!(
            "WITH n AS (SELECT count(*) AS scorecards {scorecards})
             SELECT {conversations} + n.scorecards + {of_scorecards} + {updated_scores}
             FROM n, pg_class s, pg_class c WHERE s.oid = 'scores'::regclass AND c.oid = 'scorecards'::regclass"
        );
        let params = ScopeParams::new(scope);
        let client = self.pool().get().await?;
        let row = client.query_one(&sql, &params.with(&[&kind])).await?;
        Ok(row.try_get(0)?)
    }
}
