//! Builds the gRPC server: our services, server reflection (v1 and v1alpha,
//! which older tools still use) and the standard health service, which
//! follows the dependency checker (`crate::health`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use scorekeeper_analytics::Analytics;
use scorekeeper_autoqa::AutoQa;
use scorekeeper_jobs::{JobStore, Registry};
use scorekeeper_proto::MAX_MESSAGE_BYTES;
use scorekeeper_proto::coaching::scorecard_service_server::ScorecardServiceServer;
use scorekeeper_proto::v1::analytics_service_server::AnalyticsServiceServer;
use scorekeeper_proto::v1::auto_qa_service_server::AutoQaServiceServer;
use scorekeeper_proto::v1::conversation_service_server::ConversationServiceServer;
use scorekeeper_proto::v1::job_service_server::JobServiceServer;
use scorekeeper_store::Store;
use scorekeeper_store::outbox::OutboxAnnouncer;
use tokio::sync::watch;

use crate::auth::Authenticator;
use crate::health::{self, Dependencies};
use crate::oversize;
use crate::services;

/// What every service shares. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub(crate) store: Store,
    pub(crate) analytics: Analytics,
    pub(crate) auth: Arc<Authenticator>,
    /// Job types this server accepts (CreateJob refuses the others).
    pub(crate) jobs: Registry,
    /// The job tables, on `store`'s pool.
    pub(crate) job_store: JobStore,
    /// Wakes the outbox dispatchers after a write that queued entries.
    pub(crate) outbox: OutboxAnnouncer,
    /// AutoQA's scoring pool, rule cache and call slots.
    pub(crate) autoqa: AutoQa,
    pub(crate) limits: TenantLimits,
}

/// What one customer may start, beyond AutoQA's own limits. Defaults in
/// [`TenantLimits::default`]; `serve` takes each from a setting.
#[derive(Clone, Copy, Debug)]
pub struct TenantLimits {
    /// Jobs a customer may have queued; CreateJob beyond it answers
    /// RESOURCE_EXHAUSTED (`JOBS_MAX_QUEUED_PER_CUSTOMER`). Admin tokens
    /// are not limited.
    pub max_queued_jobs_per_customer: usize,
    /// Audit calls a customer may start per minute, across every API
    /// process (`AUDITS_PER_MINUTE_PER_CUSTOMER`).
    pub audits_per_minute_per_customer: u32,
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits { max_queued_jobs_per_customer: 20, audits_per_minute_per_customer: 6 }
    }
}

impl ApiState {
    /// Must be called on a Tokio runtime (the outbox announcer's task starts
    /// on it).
    pub fn new(
        store: Store,
        analytics: Analytics,
        jobs: Registry,
        autoqa: AutoQa,
        limits: TenantLimits,
    ) -> ApiState {
        ApiState {
            autoqa,
            limits,
            auth: Arc::new(Authenticator::new(store.clone())),
            outbox: store.outbox_announcer(),
            job_store: JobStore::new(&store),
            store,
            analytics,
            jobs,
        }
    }
}

/// How long serving waits for the first dependency check, so that the
/// first health answer is a measured one (a probe times out sooner).
const FIRST_CHECK_WAIT: Duration = Duration::from_secs(2);

/// Serves the API on `listener` until `shutdown` resolves, then finishes
/// in-flight calls; over TLS only when `tls` is given. The health service answers what `health` (the
/// dependency checker, [`health::check_dependencies`]) last found.
pub async fn serve(
    state: ApiState,
    listener: tokio::net::TcpListener,
    tls: Option<tonic::transport::ServerTlsConfig>,
    mut health: watch::Receiver<Dependencies>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(scorekeeper_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the compiled descriptors are valid");
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(scorekeeper_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the compiled descriptors are valid");
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    // The listener is bound already: callers queue in its backlog meanwhile.
    let _ = tokio::time::timeout(FIRST_CHECK_WAIT, health.wait_for(|d| d.checked)).await;
    let reporting = async move {
        health::report_to_grpc(health_reporter, health).await;
        // The checker is gone only when the service stops.
        std::future::pending::<()>().await
    };

    let incoming = tokio_stream_listener(listener);
    // Each service takes and sends messages up to the contract's limit.
    macro_rules! limited {
        ($server:expr) => {
            $server.max_decoding_message_size(MAX_MESSAGE_BYTES).max_encoding_message_size(MAX_MESSAGE_BYTES)
        };
    }
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        // Every connection then handshakes first (each in its own task, so a
        // slow client holds up no one): a plain-text client is refused.
        builder = builder.tls_config(tls)?;
    }
    let server = builder
        .layer(crate::latency::LatencyLayer)
        .layer(tower::util::MapResponseLayer::new(oversize::resource_exhausted))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(limited!(ScorecardServiceServer::new(services::scorecards::Scorecards(state.clone()))))
        .add_service(limited!(ConversationServiceServer::new(services::conversations::Conversations(
            state.clone()
        ))))
        .add_service(limited!(AutoQaServiceServer::new(services::autoqa::AutoQa(state.clone()))))
        .add_service(limited!(AnalyticsServiceServer::new(services::analytics::Analytics(state.clone()))))
        .add_service(limited!(JobServiceServer::new(services::jobs::Jobs(state))))
        .serve_with_incoming_shutdown(incoming, shutdown);
    tokio::select! {
        outcome = server => outcome,
        () = reporting => unreachable!("reporting never ends"),
    }
}

fn tokio_stream_listener(listener: tokio::net::TcpListener) -> tokio_stream::wrappers::TcpListenerStream {
    tokio_stream::wrappers::TcpListenerStream::new(listener)
}

/// The address a listener is bound to, for logs.
pub fn local_addr(listener: &tokio::net::TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}
