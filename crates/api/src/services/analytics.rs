//! `AnalyticsService`: statistics read from ClickHouse.

use scorekeeper_analytics::stats::GroupBy;
use scorekeeper_domain::Invalid;
use scorekeeper_proto::v1::analytics_service_server::AnalyticsService;
use scorekeeper_proto::v1::*;
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::server::ApiState;
use crate::validate;

pub struct Analytics(pub ApiState);

#[tonic::async_trait]
impl AnalyticsService for Analytics {
    async fn get_score_stats(
        &self,
        request: Request<GetScoreStatsRequest>,
    ) -> Result<Response<GetScoreStatsResponse>, Status> {
        let principal = self.0.auth.principal(&request).await?;
        let r = request.get_ref();
        let (group_by, start, end) = (|| {
            let group_by = match validate::known_enum::<StatsGroupBy>("group_by", r.group_by, false)? {
                StatsGroupBy::Agent => GroupBy::Agent,
                StatsGroupBy::Template => GroupBy::Template,
                StatsGroupBy::Day => GroupBy::Day,
                StatsGroupBy::Unspecified => return Err(Invalid::new("group_by", "required")),
            };
            let start = validate::optional_timestamp("start_time", &r.start_time)?;
            let end = validate::optional_timestamp("end_time", &r.end_time)?;
            if let (Some(s), Some(e)) = (start, end)
                && e <= s
            {
                return Err(Invalid::new("end_time", "must be after start_time"));
            }
            Ok((group_by, start, end))
        })()
        .map_err(ApiError::from)?;
        let rows = self
            .0
            .analytics
            .score_stats(principal.customer_id, group_by, start, end)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(GetScoreStatsResponse {
            rows: rows
                .into_iter()
                .map(|row| ScoreStatsRow {
                    key: row.key,
                    is_process_scorecard: row.is_process_scorecard != 0,
                    scorecards: row.scorecards as i64,
                    average_total_score: row.average_total_score,
                })
                .collect(),
        }))
    }
}
