//! Failed authentications throttled per peer address: a token bucket per
//! address (an IPv6 caller by its /64, which one host usually holds whole).
//! A lookup in Postgres takes a unit first; a lookup that finds a live token
//! gives it back, so only failures use the bucket up. An address whose
//! bucket is empty is answered without asking Postgres.
//!
//! The state is bounded: at most [`MAX_ADDRESSES`] buckets. A full bucket is
//! the same as none, so those are dropped to make room; when every one is
//! in use, further addresses share one overflow bucket until room is made.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts an address may make at once.
pub(crate) const BURST: f64 = 20.0;
/// Failed attempts an address regains per second.
pub(crate) const PER_SECOND: f64 = 2.0;
/// Addresses with a bucket of their own.
const MAX_ADDRESSES: usize = 10_000;
/// Least time between two sweeps for full buckets when the table is full,
/// so a flood from many addresses does not sweep on every attempt.
const SWEEP_SPACING: Duration = Duration::from_secs(1);

/// Whose bucket an attempt draws on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    V4(u32),
    /// The upper 64 bits of an IPv6 address.
    V6(u64),
    /// Addresses beyond [`MAX_ADDRESSES`], and callers without one.
    Shared,
}

impl Key {
    fn of(peer: Option<IpAddr>) -> Key {
        match peer.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => Key::V4(v4.to_bits()),
            Some(IpAddr::V6(v6)) => Key::V6((v6.to_bits() >> 64) as u64),
            None => Key::Shared,
        }
    }
}

struct Bucket {
    units: f64,
    at: Instant,
}

impl Bucket {
    fn full(now: Instant) -> Bucket {
        Bucket { units: BURST, at: now }
    }

    fn refill(&mut self, now: Instant) {
        let gained = now.saturating_duration_since(self.at).as_secs_f64() * PER_SECOND;
        self.units = (self.units + gained).min(BURST);
        self.at = now;
    }
}

struct Inner {
    buckets: HashMap<Key, Bucket>,
    swept: Option<Instant>,
}

pub(crate) struct FailureThrottle {
    inner: Mutex<Inner>,
}

impl Default for FailureThrottle {
    fn default() -> Self {
        FailureThrottle { inner: Mutex::new(Inner { buckets: HashMap::new(), swept: None }) }
    }
}

impl FailureThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a unit of `peer`'s bucket before a lookup; `false` when it is
    /// empty (the lookup must not run).
    pub(crate) fn try_acquire(&self, peer: Option<IpAddr>) -> bool {
        self.try_acquire_at(peer, Instant::now())
    }

    fn try_acquire_at(&self, peer: Option<IpAddr>, now: Instant) -> bool {
        let mut inner = self.lock();
        let key = inner.key_with_room(Key::of(peer), now);
        let bucket = inner.buckets.entry(key).or_insert_with(|| Bucket::full(now));
        bucket.refill(now);
        if bucket.units < 1.0 {
            return false;
        }
        bucket.units -= 1.0;
        true
    }

    /// Gives back the unit of a lookup that found a live token (or could
    /// not tell: Postgres failing is not the caller's fault).
    pub(crate) fn refund(&self, peer: Option<IpAddr>) {
        let mut inner = self.lock();
        let key = match Key::of(peer) {
            key if inner.buckets.contains_key(&key) => key,
            _ => Key::Shared,
        };
        if let Some(bucket) = inner.buckets.get_mut(&key) {
            bucket.units = (bucket.units + 1.0).min(BURST);
        }
    }

    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.lock().buckets.len()
    }
}

impl Inner {
    /// `key`, or [`Key::Shared`] when it has no bucket and there is no room
    /// for one even after dropping the full ones.
    fn key_with_room(&mut self, key: Key, now: Instant) -> Key {
        if key == Key::Shared || self.buckets.contains_key(&key) || self.buckets.len() < MAX_ADDRESSES {
            return key;
        }
        if self.swept.is_none_or(|at| now.saturating_duration_since(at) >= SWEEP_SPACING) {
            self.swept = Some(now);
            self.buckets.retain(|k, b| {
                b.refill(now);
                *k == Key::Shared || b.units < BURST
            });
        }
        if self.buckets.len() < MAX_ADDRESSES { key } else { Key::Shared }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn v4(last: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
    }

    #[test]
    fn an_address_gets_its_burst_then_its_rate() {
        let throttle = FailureThrottle::default();
        let start = Instant::now();
        let allowed = (0..100).filter(|_| throttle.try_acquire_at(v4(1), start)).count();
        assert_eq!(allowed, BURST as usize);
        assert!(throttle.try_acquire_at(v4(2), start), "another address has its own bucket");
        let later = start + Duration::from_secs(5);
        let allowed = (0..100).filter(|_| throttle.try_acquire_at(v4(1), later)).count();
        assert_eq!(allowed, (5.0 * PER_SECOND) as usize);
    }

    #[test]
    fn successes_give_their_unit_back() {
        let throttle = FailureThrottle::default();
        let now = Instant::now();
        for _ in 0..1000 {
            assert!(throttle.try_acquire_at(v4(1), now));
            throttle.refund(v4(1));
        }
    }

    #[test]
    fn an_ipv6_host_is_one_address_whatever_its_low_bits() {
        let throttle = FailureThrottle::default();
        let now = Instant::now();
        let allowed = (0..100u128)
            .filter(|n| {
                let ip = Ipv6Addr::from_bits((0x2001_0db8_u128 << 96) | n);
                throttle.try_acquire_at(Some(IpAddr::V6(ip)), now)
            })
            .count();
        assert_eq!(allowed, BURST as usize);
        // An IPv4 peer seen through an IPv6 socket is the IPv4 address.
        let mapped = Some(IpAddr::V6(Ipv4Addr::new(10, 0, 0, 9).to_ipv6_mapped()));
        assert!(throttle.try_acquire_at(mapped, now));
        assert_eq!(throttle.addresses(), 2);
    }

    #[test]
    fn many_addresses_stay_bounded_and_still_throttled() {
        let throttle = FailureThrottle::default();
        let now = Instant::now();
        let mut allowed = 0;
        for n in 0..(MAX_ADDRESSES as u32 + 5_000) {
            let ip = Some(IpAddr::V4(Ipv4Addr::from_bits(0x0a00_0000 + n)));
            for _ in 0..(BURST as usize + 1) {
                allowed += usize::from(throttle.try_acquire_at(ip, now));
            }
        }
        assert!(throttle.addresses() <= MAX_ADDRESSES + 1, "{} buckets", throttle.addresses());
        // Addresses beyond the bound share one bucket.
        assert_eq!(allowed, MAX_ADDRESSES * BURST as usize + BURST as usize);
    }
}
