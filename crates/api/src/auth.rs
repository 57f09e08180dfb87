//! Bearer-token authentication. Tokens are looked up by hash in Postgres;
//! accepted ones are cached ([`cache`]) for up to 30 s, and dropped from
//! the cache as soon as Postgres announces their revocation on
//! `scorekeeper_tokens` (a listener task per authenticator), so a revoked
//! token stops working on every process within about a second.
//!
//! Failed authentications are counted (`scorekeeper_auth_failures_total`),
//! logged at warn with the peer address and the token's non-secret prefix,
//! never its text, within a budget of lines ([`log_budget`]), and throttled
//! per peer address ([`throttle`]): an address that keeps failing is
//! answered RESOURCE_EXHAUSTED without a query.

mod cache;
mod log_budget;
mod throttle;

use std::net::IpAddr;
use std::sync::Arc;

use scorekeeper_store::Store;
use scorekeeper_store::listen::Heard;
use scorekeeper_store::tenants::{self, Principal, TOKENS_CHANNEL, TokenId, TokenLookup};
use sha2::{Digest, Sha256};

use self::cache::{Epoch, TokenCache};
use self::log_budget::{LogBudget, Verdict};
use self::throttle::FailureThrottle;
use crate::error::{ApiError, ApiResult};

/// Why a call's credentials were refused; the metric's `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// No `authorization: Bearer …` metadata.
    Missing,
    /// Not of the shape of our tokens: refused without a query.
    Malformed,
    Unknown,
    Revoked,
    /// Too many failures from the peer's address: refused without a query.
    Throttled,
}

impl Failure {
    fn label(self) -> &'static str {
        match self {
            Failure::Missing => "missing",
            Failure::Malformed => "malformed",
            Failure::Unknown => "unknown",
            Failure::Revoked => "revoked",
            Failure::Throttled => "throttled",
        }
    }
}

/// A live token as Postgres answered it, with the cache epoch read before
/// the lookup (what [`TokenCache::insert`] needs to refuse a stale entry).
struct Found {
    id: TokenId,
    principal: Principal,
    before: Epoch,
}

pub struct Authenticator {
    store: Store,
    cache: Arc<TokenCache>,
    throttle: FailureThrottle,
    log: LogBudget,
    /// The revocation listener; it stops with the authenticator.
    listener: tokio::task::AbortHandle,
}

impl Drop for Authenticator {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl Authenticator {
    /// Must be called on a Tokio runtime: the revocation listener starts on
    /// it. Until its `LISTEN` is in place every call asks Postgres.
    pub fn new(store: Store) -> Authenticator {
        let cache = Arc::new(TokenCache::default());
        let listener = tokio::spawn(listen_for_revocations(store.clone(), cache.clone())).abort_handle();
        Authenticator {
            store,
            cache,
            throttle: FailureThrottle::default(),
            log: LogBudget::default(),
            listener,
        }
    }

    /// The caller of `request`, from its `authorization: Bearer …` metadata.
    pub async fn principal<T>(&self, request: &tonic::Request<T>) -> ApiResult<Principal> {
        let peer = request.remote_addr().map(|a| a.ip());
        let Some(token) = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return Err(self.refuse(Failure::Missing, peer, None));
        };
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(principal) = self.cache.get(&key) {
            return Ok(principal);
        }
        let found = self.look_up(token, peer).await?;
        // Cached only if no revocation was heard since the lookup began.
        self.cache.insert(key, found.id, found.principal, found.before);
        Ok(found.principal)
    }

    /// Checks `token`, presented from `peer`, as every call's token is
    /// checked (same refusals, counted and throttled the same), without
    /// the cache: for a console login, which needs the token's id.
    pub async fn check_token(&self, token: &str, peer: Option<IpAddr>) -> ApiResult<(TokenId, Principal)> {
        let found = self.look_up(token.trim(), peer).await?;
        Ok((found.id, found.principal))
    }

    /// Looks `token` up in Postgres, within the throttle of `peer`.
    async fn look_up(&self, token: &str, peer: Option<IpAddr>) -> ApiResult<Found> {
        let prefix = tenants::public_prefix(token);
        if !self.throttle.try_acquire(peer) {
            return Err(self.refuse(Failure::Throttled, peer, prefix));
        }
        let before = self.cache.epoch();
        let found = match self.store.look_up_token(token).await {
            Ok(found) => found,
            Err(error) => {
                self.throttle.refund(peer);
                return Err(error.into());
            }
        };
        match found {
            TokenLookup::Live { id, principal } => {
                self.throttle.refund(peer);
                Ok(Found { id, principal, before })
            }
            TokenLookup::Revoked { .. } => Err(self.refuse(Failure::Revoked, peer, prefix)),
            TokenLookup::Unknown if prefix.is_none() => Err(self.refuse(Failure::Malformed, peer, None)),
            TokenLookup::Unknown => Err(self.refuse(Failure::Unknown, peer, prefix)),
        }
    }

    /// Counts and (within the log budget) logs a refusal, and says what to
    /// answer. The token's text is never logged: only the prefix of one of
    /// our tokens, which is not secret.
    fn refuse(&self, failure: Failure, peer: Option<IpAddr>, prefix: Option<&str>) -> ApiError {
        metrics::counter!(crate::metrics::AUTH_FAILURES_TOTAL, "reason" => failure.label()).increment(1);
        if let Verdict::Log { suppressed } = self.log.take() {
            let peer = peer.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
            let prefix = prefix.unwrap_or("-");
            if suppressed > 0 {
                tracing::warn!(
                    suppressed,
                    "failed authentications not logged in the last {:?} (log budget)",
                    log_budget::WINDOW
                );
            }
            tracing::warn!(reason = failure.label(), %peer, token_prefix = prefix, "authentication failed");
        }
        match failure {
            Failure::Throttled => ApiError::ResourceExhausted(
                "too many failed authentications from this address; retry later".to_owned(),
            ),
            _ => ApiError::Unauthenticated,
        }
    }
}

/// Keeps `cache` in step with revocations: drops a token's entry when its
/// revocation is announced, and everything whenever the listener was not
/// connected (an announcement may have been missed). Runs until aborted.
async fn listen_for_revocations(store: Store, cache: Arc<TokenCache>) {
    store
        .listen(TOKENS_CHANNEL, |heard| match heard {
            Heard::Listening => cache.set_listening(true),
            Heard::Lost => cache.set_listening(false),
            Heard::Notification(payload) => match payload.parse() {
                Ok(id) => cache.revoked(TokenId(id)),
                // Not ours to read: assume the worst.
                Err(_) => cache.clear(),
            },
        })
        .await
}
