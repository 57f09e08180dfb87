//! Bearer-token authentication. Tokens are looked up by hash in Postgres;
//! recent successes are cached briefly so a busy client does not cost a
//! query per request (a revoked token stops working within `CACHE_TTL`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use scorekeeper_store::Store;
use scorekeeper_store::tenants::Principal;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};

const CACHE_TTL: Duration = Duration::from_secs(30);
const CACHE_MAX_ENTRIES: usize = 10_000;

pub struct Authenticator {
    store: Store,
    cache: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
}

impl Authenticator {
    pub fn new(store: Store) -> Authenticator {
        Authenticator { store, cache: Mutex::new(HashMap::new()) }
    }

    /// The caller of `request`, from its `authorization: Bearer …` metadata.
    pub async fn principal<T>(&self, request: &tonic::Request<T>) -> ApiResult<Principal> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthenticated)?;
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((principal, at)) = self.cache.lock().expect("auth cache lock").get(&key)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(*principal);
        }
        let principal = self.store.authenticate(token).await?.ok_or(ApiError::Unauthenticated)?;
        let mut cache = self.cache.lock().expect("auth cache lock");
        if cache.len() >= CACHE_MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(key, (principal, Instant::now()));
        Ok(principal)
    }
}
