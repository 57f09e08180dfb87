//! The running service, assembled in one place: which parts run (gRPC API,
//! outbox dispatcher, job worker, reindex and audit schedulers) comes from
//! [`Parts`]; [`Service::start`] wires them on one store and one ClickHouse
//! client, and [`Service::stop`] stops them together. `scorekeeper serve`
//! and the test harness both start the service this way, so what the tests
//! run is what production runs. Every process runs the dependency checker
//! (`scorekeeper_api::health`), whatever its parts: its answer drives the
//! gRPC health service and, through [`Service::health`], `/health`.
//!
//! Not here: settings parsing, migrations, the metrics recorder and the
//! HTTP port, which belong to the binary (they differ between `serve` and
//! the tests by design).

use std::error::Error as StdError;
use std::future::Future;

pub mod telemetry;

use scorekeeper_analytics::Analytics;
pub use scorekeeper_api::TenantLimits;
use scorekeeper_api::calls::Calls;
use scorekeeper_api::health::{self, Dependencies};
use scorekeeper_autoqa::AutoQa;
pub use scorekeeper_autoqa::{AutoQaSettings, default_threads as default_autoqa_threads};
use scorekeeper_jobs::{JobStore, Worker, WorkerConfig};
use scorekeeper_store::Store;
use scorekeeper_sync::audit::schedule::AuditScheduleSettings;
use scorekeeper_sync::outbox::{DispatcherConfig, OutboxDispatcher};
use scorekeeper_sync::reindex::ReindexSettings;
use scorekeeper_sync::reindex::schedule::ReindexScheduleSettings;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Why the service stopped other than when told to.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the gRPC server failed")]
    Grpc(#[source] tonic::transport::Error),
    #[error("{part} failed")]
    Part {
        part: &'static str,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("{part} ended by itself")]
    Ended { part: &'static str },
    #[error("a part of the service panicked")]
    Panicked(#[source] tokio::task::JoinError),
}

/// Which parts run in this process, and how. `None`: the part does not
/// run here (another process may run it).
pub struct Parts {
    /// Serve the gRPC API on this listener.
    pub api: Option<TcpListener>,
    /// Serve the gRPC API over TLS with this certificate (`None`: plain).
    pub api_tls: Option<tonic::transport::ServerTlsConfig>,
    pub dispatcher: Option<DispatcherConfig>,
    pub worker: Option<WorkerConfig>,
    /// The reindex handler's batch sizes; the API's registry needs them
    /// too (CreateJob accepts only registered types).
    pub reindex: ReindexSettings,
    pub reindex_schedule: Option<ReindexScheduleSettings>,
    pub audit_schedule: Option<AuditScheduleSettings>,
    /// How AutoQA scoring shares this process (used where the API runs).
    pub autoqa: AutoQaSettings,
    /// What one customer may start through the API.
    pub limits: TenantLimits,
}

/// The parts running, until [`Service::stop`] (or a drop, which aborts
/// them).
pub struct Service {
    shutdown: watch::Sender<bool>,
    parts: JoinSet<Result<()>>,
    health: watch::Receiver<Dependencies>,
    /// The API's calls, for the console; on the gRPC server's state where
    /// it runs here.
    calls: Calls,
}

impl Service {
    /// Starts every part `parts` names, each a task on the current Tokio
    /// runtime, on `store` (Postgres) and `analytics` (ClickHouse). The
    /// job registry is the one of `scorekeeper_sync::job_registry`: the
    /// worker runs those job types and the API accepts them.
    pub fn start(store: &Store, analytics: &Analytics, parts: Parts) -> Service {
        let (shutdown, _) = watch::channel(false);
        let (health_report, health) = watch::channel(Dependencies::default());
        let registry = scorekeeper_sync::job_registry(store.clone(), analytics.clone(), parts.reindex);
        // Built in every process, API or not: the console on the HTTP port
        // answers through it.
        let state = scorekeeper_api::ApiState::new(
            store.clone(),
            analytics.clone(),
            registry.clone(),
            AutoQa::new(store.clone(), parts.autoqa),
            parts.limits,
        );
        let calls = Calls::new(state.clone());
        let mut service = Service { shutdown, parts: JoinSet::new(), health, calls };
        let checks = health::check_dependencies(
            store.clone(),
            analytics.clone(),
            health_report,
            service.stop_signal(),
        );
        service.parts.spawn(async move {
            checks.await;
            Err(ServiceError::Ended { part: "the health checker" })
        });
        if let Some(config) = parts.dispatcher {
            let dispatcher = OutboxDispatcher::new(store.clone(), analytics.clone(), config);
            let stop = service.stop_signal();
            service.parts.spawn(async move {
                dispatcher.run(stop).await;
                Err(ServiceError::Ended { part: "the outbox dispatcher" })
            });
            tracing::info!("outbox dispatcher running");
        }
        if let Some(config) = parts.worker {
            tracing::info!(worker = %config.worker_id, "job worker running");
            let worker = Worker::new(JobStore::new(store), registry.clone(), config);
            let stop = service.stop_signal();
            service.parts.spawn(async move {
                worker.run(stop).await;
                Err(ServiceError::Ended { part: "the job worker" })
            });
        }
        let schedulers = [
            parts.reindex_schedule.map(|settings| settings.scheduler(JobStore::new(store))),
            parts.audit_schedule.map(|settings| settings.scheduler(JobStore::new(store))),
        ];
        for scheduler in schedulers.into_iter().flatten() {
            let stop = service.stop_signal();
            service.parts.spawn(async move {
                scheduler.run(stop).await;
                Err(ServiceError::Ended { part: "a scheduler" })
            });
        }
        if let Some(listener) = parts.api {
            let mut stop = service.stop_signal();
            let health = service.health();
            service.parts.spawn(async move {
                scorekeeper_api::serve(state, listener, parts.api_tls, health, async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                })
                .await
                .map_err(ServiceError::Grpc)?;
                Err(ServiceError::Ended { part: "the gRPC server" })
            });
        }
        service
    }

    /// The API's calls as a principal, for the console.
    pub fn calls(&self) -> Calls {
        self.calls.clone()
    }

    /// What the dependency checker last found (Postgres, ClickHouse
    /// reachable); what `/health` answers from.
    pub fn health(&self) -> watch::Receiver<Dependencies> {
        self.health.clone()
    }

    /// Turns true when the service is told to stop; for parts the caller
    /// runs beside it ([`Service::spawn`]).
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Runs `part` (named `name` in errors) as one more part of the
    /// service: it must end when [`Service::stop_signal`] turns true.
    pub fn spawn<E>(&mut self, name: &'static str, part: impl Future<Output = Result<(), E>> + Send + 'static)
    where
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        self.parts.spawn(async move {
            part.await.map_err(|e| ServiceError::Part { part: name, source: e.into() })?;
            Err(ServiceError::Ended { part: name })
        });
    }

    /// Waits until a part ends by itself, which is a failure whatever it
    /// returned (parts run until told to stop), and returns why. Pending
    /// forever when no part runs.
    pub async fn failed(&mut self) -> ServiceError {
        match self.parts.join_next().await {
            Some(Ok(Err(error))) => error,
            Some(Ok(Ok(()))) => ServiceError::Ended { part: "a part" },
            Some(Err(panic)) => ServiceError::Panicked(panic),
            None => std::future::pending().await,
        }
    }

    /// Tells every part to stop and waits for them all. Parts that end
    /// because they were told to are not failures; a panic is.
    pub async fn stop(mut self) -> Result<()> {
        let _ = self.shutdown.send(true);
        let mut outcome = Ok(());
        while let Some(done) = self.parts.join_next().await {
            match done {
                Ok(Ok(())) | Ok(Err(ServiceError::Ended { .. })) => {}
                Ok(Err(error)) => outcome = outcome.and(Err(error)),
                Err(panic) => outcome = outcome.and(Err(ServiceError::Panicked(panic))),
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use scorekeeper_analytics::ClickHouseConfig;

    use super::*;

    /// A service with no part of its own, on servers it never reaches.
    fn idle() -> Service {
        let store = Store::connect("postgres://nobody@127.0.0.1:1/none", 1).unwrap();
        let config = ClickHouseConfig {
            url: "http://127.0.0.1:1".into(),
            database: "none".into(),
            user: "default".into(),
            password: String::new(),
            cluster: None,
        };
        let parts = Parts {
            api: None,
            api_tls: None,
            dispatcher: None,
            worker: None,
            reindex: ReindexSettings::default(),
            reindex_schedule: None,
            audit_schedule: None,
            autoqa: AutoQaSettings::default(),
            limits: TenantLimits::default(),
        };
        Service::start(&store, &Analytics::new(config).unwrap(), parts)
    }

    /// Runs until told to stop, then ends well.
    async fn until_stopped(mut stop: watch::Receiver<bool>) -> Result<(), std::io::Error> {
        let _ = stop.wait_for(|stop| *stop).await;
        Ok(())
    }

    #[tokio::test]
    async fn parts_that_end_when_told_stop_cleanly() {
        let mut service = idle();
        service.spawn("a", until_stopped(service.stop_signal()));
        service.spawn("b", until_stopped(service.stop_signal()));
        service.stop().await.expect("told to stop: not a failure");
    }

    #[tokio::test]
    async fn a_part_that_ends_by_itself_is_a_failure_naming_it() {
        let mut service = idle();
        service.spawn("the steady part", until_stopped(service.stop_signal()));
        service.spawn("the quitter", async { Ok::<(), std::io::Error>(()) });
        let error = service.failed().await;
        assert!(matches!(error, ServiceError::Ended { part: "the quitter" }), "{error}");
        let mut service = idle();
        service.spawn("the failing part", async { Err(std::io::Error::other("port taken")) });
        let error = service.failed().await;
        assert_eq!(error.to_string(), "the failing part failed");
        assert_eq!(std::error::Error::source(&error).map(ToString::to_string), Some("port taken".into()));
    }
}
