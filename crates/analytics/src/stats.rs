//! Score statistics read from ClickHouse (`sql/queries/score_stats.sql`).

use chrono::{DateTime, Utc};
use scorekeeper_domain::CustomerId;
use serde::Deserialize;

use crate::error::{AnalyticsError, Result};
use crate::{Analytics, rows};

const SCORE_STATS: &str = include_str!("../sql/queries/score_stats.sql");

/// What score statistics are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Agent,
    Template,
    /// Calendar day (UTC) of the scorecard's creation.
    Day,
}

impl GroupBy {
    fn number(self) -> u8 {
        match self {
            GroupBy::Agent => 1,
            GroupBy::Template => 2,
            GroupBy::Day => 3,
        }
    }
}

#[derive(Clone, Debug, PartialEq, clickhouse::Row, Deserialize)]
pub struct ScoreStatsRow {
    /// Agent id, template id or `YYYY-MM-DD`.
    pub key: String,
    pub is_process_scorecard: u8,
    pub scorecards: u64,
    pub average_total_score: f64,
}

impl Analytics {
    /// Average total score of the customer's live scorecards created in
    /// `[start, end)`, by `group_by`, process and conversation apart.
    pub async fn score_stats(
        &self,
        customer_id: CustomerId,
        group_by: GroupBy,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> Result<Vec<ScoreStatsRow>> {
        self.client()
            .query(SCORE_STATS)
            .bind(group_by.number())
            .bind(group_by.number())
            .bind(customer_id.0)
            .bind(start.map_or(0, rows::bound_seconds))
            .bind(end.map_or(u32::MAX, rows::bound_seconds))
            .fetch_all()
            .await
            .map_err(AnalyticsError::from_query)
    }
}

#[cfg(test)]
mod tests {
    use clickhouse::Row;

    #[test]
    fn the_query_selects_the_columns_of_its_row_in_order() {
        assert_eq!(crate::select_list::select_names(super::SCORE_STATS), super::ScoreStatsRow::COLUMN_NAMES);
    }
}
