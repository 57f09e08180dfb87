//! The cache of authenticated tokens: a token's principal for up to
//! [`CACHE_TTL`], dropped at once when Postgres announces the token's
//! revocation, and not used at all while the announcements might be missed.
//!
//! Only tokens Postgres accepted enter it, so bad tokens, however many,
//! neither evict good entries nor grow it; it holds at most
//! [`CACHE_MAX_ENTRIES`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use scorekeeper_store::tenants::{Principal, TokenId};

/// How long a token's principal is used without asking Postgres again. A
/// revocation is announced and acts within about a second; this bounds
/// only changes nobody announced.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(30);
/// Live tokens cached at once; beyond it the oldest entry makes room.
const CACHE_MAX_ENTRIES: usize = 10_000;

/// A token's SHA-256, the cache's key (the token itself is never kept).
pub(crate) type TokenKey = [u8; 32];

struct Entry {
    id: TokenId,
    principal: Principal,
    at: Instant,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<TokenKey, Entry>,
    /// Raised by every invalidation. A lookup that started before one may
    /// have read the row before the revocation committed: its answer is
    /// not cached.
    epoch: u64,
    /// Whether revocations are being heard. Until the listener's `LISTEN`
    /// is in place, and from its connection's loss until it is back, a
    /// revocation could go unheard, so nothing is served from the cache.
    listening: bool,
}

#[derive(Default)]
pub(crate) struct TokenCache {
    inner: Mutex<Inner>,
}

/// Where a cache stood when a lookup began; see [`TokenCache::insert`].
#[derive(Clone, Copy)]
pub(crate) struct Epoch(u64);

impl TokenCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The principal of a token accepted less than [`CACHE_TTL`] ago and not
    /// revoked since.
    pub(crate) fn get(&self, key: &TokenKey) -> Option<Principal> {
        let inner = self.lock();
        let entry = inner.entries.get(key)?;
        (inner.listening && entry.at.elapsed() < CACHE_TTL).then_some(entry.principal)
    }

    /// To be taken before looking a token up in Postgres, and given back to
    /// [`TokenCache::insert`].
    pub(crate) fn epoch(&self) -> Epoch {
        Epoch(self.lock().epoch)
    }

    /// Caches a token Postgres accepted, unless something was invalidated
    /// since `before` (the answer may predate a revocation) or revocations
    /// are not being heard.
    pub(crate) fn insert(&self, key: TokenKey, id: TokenId, principal: Principal, before: Epoch) {
        let mut inner = self.lock();
        if !inner.listening || inner.epoch != before.0 {
            return;
        }
        if inner.entries.len() >= CACHE_MAX_ENTRIES && !inner.entries.contains_key(&key) {
            inner.entries.retain(|_, e| e.at.elapsed() < CACHE_TTL);
            if inner.entries.len() >= CACHE_MAX_ENTRIES
                && let Some(oldest) = inner.entries.iter().min_by_key(|(_, e)| e.at).map(|(k, _)| *k)
            {
                inner.entries.remove(&oldest);
            }
        }
        inner.entries.insert(key, Entry { id, principal, at: Instant::now() });
    }

    /// Token `id` was revoked (or changed, or deleted): its entries go.
    pub(crate) fn revoked(&self, id: TokenId) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.entries.retain(|_, e| e.id != id);
    }

    /// Whether revocations are heard from now on. Either way every entry
    /// goes: one may have been revoked while nobody listened.
    pub(crate) fn set_listening(&self, listening: bool) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.entries.clear();
        inner.listening = listening;
    }

    /// Drops every entry (an announcement that could not be read may have
    /// been any token's).
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.entries.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use scorekeeper_domain::CustomerId;

    use super::*;

    const ACME: Principal = Principal { customer_id: CustomerId(1), is_admin: false };

    fn listening() -> TokenCache {
        let cache = TokenCache::default();
        cache.set_listening(true);
        cache
    }

    #[test]
    fn nothing_is_served_until_revocations_are_heard() {
        let cache = TokenCache::default();
        let before = cache.epoch();
        cache.insert([1; 32], TokenId(1), ACME, before);
        assert_eq!(cache.get(&[1; 32]), None);
        cache.set_listening(true);
        let before = cache.epoch();
        cache.insert([1; 32], TokenId(1), ACME, before);
        assert_eq!(cache.get(&[1; 32]), Some(ACME));
        // The listener lost its connection: a revocation may be missed.
        cache.set_listening(false);
        assert_eq!(cache.get(&[1; 32]), None);
        cache.set_listening(true);
        assert_eq!(cache.get(&[1; 32]), None, "entries from before the loss are gone");
    }

    #[test]
    fn a_revocation_drops_the_token_and_the_answers_of_lookups_it_overtook() {
        let cache = listening();
        let before = cache.epoch();
        cache.insert([1; 32], TokenId(1), ACME, before);
        cache.insert([2; 32], TokenId(2), ACME, before);
        let during = cache.epoch();
        cache.revoked(TokenId(1));
        assert_eq!(cache.get(&[1; 32]), None);
        assert_eq!(cache.get(&[2; 32]), Some(ACME), "other tokens stay");
        // A lookup of token 1 that began before the revocation committed.
        cache.insert([1; 32], TokenId(1), ACME, during);
        assert_eq!(cache.get(&[1; 32]), None, "a lookup older than the revocation is not cached");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = listening();
        for n in 0..(CACHE_MAX_ENTRIES + 10) as u64 {
            let mut key = [0; 32];
            key[..8].copy_from_slice(&n.to_le_bytes());
            let before = cache.epoch();
            cache.insert(key, TokenId(n as i64), ACME, before);
        }
        assert_eq!(cache.len(), CACHE_MAX_ENTRIES);
    }
}
