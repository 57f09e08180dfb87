//! The operator console, served by `scorekeeper serve` on its HTTP port
//! under `/ui` (docs/console.md): a login page, the pages (plain HTML, CSS
//! and JavaScript embedded in the binary: no CDN, nothing to build), and the
//! JSON they read under `/ui/api`.
//!
//! Every answer but the login page needs a session ([`session`]); what a
//! session may see and do runs through the API's own calls
//! (`scorekeeper_api::calls`), so the console refuses what the API refuses,
//! with the same codes ([`error`]).

mod assets;
mod audits;
mod error;
pub mod freshness;
mod jobs;
mod session;
mod topology;
mod views;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use scorekeeper_analytics::Analytics;
use scorekeeper_api::calls::Calls;
use scorekeeper_api::health::Dependencies;
use tokio::sync::watch;

pub use freshness::Freshness;

/// Sessions last this long unless `CONSOLE_SESSION_SECONDS` says otherwise.
pub const DEFAULT_SESSION: Duration = Duration::from_secs(8 * 3600);

/// What the console's answers need. Cheap to clone.
#[derive(Clone)]
pub struct Console {
    calls: Calls,
    analytics: Analytics,
    health: watch::Receiver<Dependencies>,
    freshness: Freshness,
    session_lifetime: Duration,
    /// The port serves TLS: the session cookie is then `Secure`.
    tls: bool,
}

impl Console {
    pub fn new(
        calls: Calls,
        analytics: Analytics,
        health: watch::Receiver<Dependencies>,
        freshness: Freshness,
        session_lifetime: Duration,
        tls: bool,
    ) -> Console {
        Console { calls, analytics, health, freshness, session_lifetime, tls }
    }

    /// The console's routes, all under `/ui`.
    pub fn router(self) -> Router {
        Router::new()
            .route("/ui", get(assets::app_page))
            .route("/ui/", get(assets::app_page))
            .route("/ui/login", get(assets::login_page).post(session::log_in))
            .route("/ui/logout", post(session::log_out))
            .route("/ui/assets/{file}", get(assets::asset))
            .route("/ui/api/session", get(session::describe))
            .route("/ui/api/jobs", get(jobs::list))
            .route("/ui/api/jobs/{id}", get(jobs::get))
            .route("/ui/api/jobs/{id}/cancel", post(jobs::cancel))
            .route("/ui/api/freshness", get(freshness::answer))
            .route("/ui/api/audits", get(audits::list).post(audits::start))
            .route("/ui/api/audits/{id}", get(audits::get))
            .route("/ui/api/audits/{id}/repair", post(audits::repair))
            .route("/ui/api/topology", get(topology::answer))
            .with_state(self)
    }
}
