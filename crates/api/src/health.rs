//! Health: one dependency checker, off the request path, whose latest
//! answer drives both the gRPC health service (`grpc.health.v1`, per
//! service and overall) and the HTTP `/health` of `serve`, so a load
//! balancer and a probe never disagree.
//!
//! What each service needs: every call authenticates against Postgres, so
//! every service needs Postgres; `AnalyticsService` (score statistics,
//! the audit) also reads ClickHouse. The write paths do not need
//! ClickHouse: the outbox holds their rows until it answers. The overall
//! service (`""`) is serving while Postgres answers, as `/health` is.

use std::time::Duration;

use scorekeeper_analytics::Analytics;
use scorekeeper_proto::coaching::scorecard_service_server::ScorecardServiceServer;
use scorekeeper_proto::v1::analytics_service_server::AnalyticsServiceServer;
use scorekeeper_proto::v1::auto_qa_service_server::AutoQaServiceServer;
use scorekeeper_proto::v1::conversation_service_server::ConversationServiceServer;
use scorekeeper_proto::v1::job_service_server::JobServiceServer;
use scorekeeper_store::Store;
use tokio::sync::watch;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::services;

/// How often the dependencies are probed. With [`PROBE_TIMEOUT`], an
/// outage shows within about two seconds, and a probe costs one `SELECT 1`
/// per server per second.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A probe that has not answered within this counts as unreachable: a
/// server that hangs is as useless to a caller as one that refuses.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What the last check found. Before the first check nothing is known,
/// and nothing is reported as reachable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// A check has run.
    pub checked: bool,
    pub postgres: bool,
    pub clickhouse: bool,
}

/// Which servers a service needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Needs {
    Postgres,
    PostgresAndClickHouse,
}

impl Dependencies {
    /// Whether the process as a whole can serve: the overall health and
    /// `/health`'s status. Postgres is the truth; without it nothing works.
    pub fn serving(&self) -> bool {
        self.postgres
    }

    fn can_serve(&self, needs: Needs) -> bool {
        match needs {
            Needs::Postgres => self.postgres,
            Needs::PostgresAndClickHouse => self.postgres && self.clickhouse,
        }
    }
}

/// Every gRPC service with what it needs; the overall service `""` is
/// [`Dependencies::serving`].
const SERVICES: [(&str, Needs); 5] = [
    (<ScorecardServiceServer<services::scorecards::Scorecards> as NamedService>::NAME, Needs::Postgres),
    (
        <ConversationServiceServer<services::conversations::Conversations> as NamedService>::NAME,
        Needs::Postgres,
    ),
    (<AutoQaServiceServer<services::autoqa::AutoQa> as NamedService>::NAME, Needs::Postgres),
    (<JobServiceServer<services::jobs::Jobs> as NamedService>::NAME, Needs::Postgres),
    (
        <AnalyticsServiceServer<services::analytics::Analytics> as NamedService>::NAME,
        Needs::PostgresAndClickHouse,
    ),
];

fn status(serving: bool) -> ServingStatus {
    if serving { ServingStatus::Serving } else { ServingStatus::NotServing }
}

/// Probes Postgres and ClickHouse every [`CHECK_INTERVAL`] and publishes
/// what it found on `report` (only changes wake its readers), until `stop`
/// turns true. Changes are logged once each, not every second.
pub async fn check_dependencies(
    store: Store,
    analytics: Analytics,
    report: watch::Sender<Dependencies>,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let (postgres, clickhouse) = tokio::join!(
            tokio::time::timeout(PROBE_TIMEOUT, store.ping()),
            tokio::time::timeout(PROBE_TIMEOUT, analytics.ping()),
        );
        let now = Dependencies {
            checked: true,
            postgres: matches!(postgres, Ok(Ok(()))),
            clickhouse: matches!(clickhouse, Ok(Ok(()))),
        };
        report.send_if_modified(|last| {
            let changed = *last != now;
            if changed {
                log_change(last, &now);
                *last = now;
            }
            changed
        });
        tokio::select! {
            _ = tokio::time::sleep(CHECK_INTERVAL) => {}
            _ = stop.wait_for(|stop| *stop) => {}
        }
    }
}

fn log_change(last: &Dependencies, now: &Dependencies) {
    for (server, was, is) in
        [("Postgres", last.postgres, now.postgres), ("ClickHouse", last.clickhouse, now.clickhouse)]
    {
        match (last.checked && was, is) {
            (true, false) => tracing::warn!(server, "health: unreachable; dependent services NOT_SERVING"),
            (false, true) => tracing::info!(server, "health: reachable"),
            (false, false) if !last.checked => {
                tracing::warn!(server, "health: unreachable at start; dependent services NOT_SERVING")
            }
            _ => {}
        }
    }
}

/// Keeps `reporter` (the gRPC health service) in line with `health`: each
/// service by what it needs, `""` by [`Dependencies::serving`]. Returns
/// when the checker is gone.
pub(crate) async fn report_to_grpc(reporter: HealthReporter, mut health: watch::Receiver<Dependencies>) {
    loop {
        let now = *health.borrow_and_update();
        reporter.set_service_status("", status(now.serving())).await;
        for (name, needs) in SERVICES {
            reporter.set_service_status(name, status(now.can_serve(needs))).await;
        }
        if health.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analytics_alone_needs_clickhouse() {
        let clickhouse_down = Dependencies { checked: true, postgres: true, clickhouse: false };
        assert!(clickhouse_down.serving());
        for (name, needs) in SERVICES {
            assert_eq!(clickhouse_down.can_serve(needs), !name.ends_with("AnalyticsService"), "{name}");
        }
        let postgres_down = Dependencies { checked: true, postgres: false, clickhouse: true };
        assert!(!postgres_down.serving());
        assert!(SERVICES.iter().all(|&(_, needs)| !postgres_down.can_serve(needs)));
        assert!(!Dependencies::default().serving(), "nothing is known before the first check");
    }
}
