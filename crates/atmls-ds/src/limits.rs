//! Rate limits (DS-9): a token bucket per key (a group mailbox and epoch tag, a client
//! address), and the price of strangers' posts (DS-17), in memory per process.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use atmls_ds_wire::stamp::MAX_STAMP_BITS;

/// Buckets above this many are swept of full (idle) ones.
const SWEEP_AT: usize = 100_000;

/// Token buckets: `rate` requests per second, bursts of `2 × rate`. A rate of 0 disables it.
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter of `rate` requests per second per key (0: unlimited).
    pub fn new(rate: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate),
            burst: f64::from(rate) * 2.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; false when the key is over its rate.
    pub fn allow(&self, key: &K) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let now = Instant::now();
        let Ok(mut b) = self.buckets.lock() else {
            return true;
        };
        if b.len() > SWEEP_AT {
            let (rate, burst) = (self.rate, self.burst);
            b.retain(|_, (t, at)| *t + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = b.entry(key.clone()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Half-life of a Welcome mailbox's recent-post count (seconds).
const LOAD_HALF_LIFE: f64 = 10.0;

/// The proof-of-work price of a post to a Welcome mailbox (DS-17): `base` bits, plus one bit
/// for each doubling of the mailbox's recent posts over `rate` per second, up to
/// [`MAX_STAMP_BITS`]. So a flood gets dearer for whoever sends it, while an honest inviter is
/// told the price and pays it once: nobody is refused outright, as a fixed bucket would.
pub struct StampPrice {
    base: u8,
    /// The recent-post count that `rate` per second settles at.
    allowed: f64,
    load: Mutex<HashMap<[u8; 32], (f64, Instant)>>,
}

impl StampPrice {
    /// A price of `base` bits that rises above `rate` posts per second per mailbox (0: never
    /// rises).
    pub fn new(base: u8, rate: u32) -> Self {
        StampPrice {
            base: base.min(MAX_STAMP_BITS),
            allowed: f64::from(rate) * LOAD_HALF_LIFE / std::f64::consts::LN_2,
            load: Mutex::new(HashMap::new()),
        }
    }

    fn decayed(&self, (n, at): (f64, Instant), now: Instant) -> f64 {
        n * (-now.duration_since(at).as_secs_f64() / LOAD_HALF_LIFE).exp2()
    }

    /// The bits a post to `mailbox` must carry now.
    pub fn price(&self, mailbox: &[u8; 32]) -> u8 {
        let now = Instant::now();
        let load = match self.load.lock() {
            Ok(m) => m.get(mailbox).map_or(0.0, |e| self.decayed(*e, now)),
            Err(_) => 0.0,
        };
        if self.allowed <= 0.0 || load <= self.allowed {
            return self.base;
        }
        let extra = (load / self.allowed)
            .log2()
            .ceil()
            .min(f64::from(MAX_STAMP_BITS));
        self.base.saturating_add(extra as u8).min(MAX_STAMP_BITS)
    }

    /// Counts a post stored in `mailbox`.
    pub fn paid(&self, mailbox: &[u8; 32]) {
        let now = Instant::now();
        let Ok(mut m) = self.load.lock() else {
            return;
        };
        if m.len() > SWEEP_AT {
            m.retain(|_, e| self.decayed(*e, now) >= 0.5);
        }
        let e = m.entry(*mailbox).or_insert((0.0, now));
        *e = (self.decayed(*e, now) + 1.0, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_9_bucket_refuses_over_burst_and_zero_disables() {
        let r = RateLimiter::new(5);
        let allowed = (0..100).filter(|_| r.allow(&1u8)).count();
        assert!((10..=11).contains(&allowed), "{allowed}");
        assert!(r.allow(&2u8), "keys are independent");
        let off = RateLimiter::new(0);
        assert!((0..1000).all(|_| off.allow(&1u8)));
    }

    #[test]
    fn ds_17_price_rises_one_bit_per_doubling_and_is_capped() {
        let p = StampPrice::new(8, 10);
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(p.price(&a), 8);
        // 10/s settles at about 144 recent posts: up to there the base price holds.
        for _ in 0..140 {
            p.paid(&a);
        }
        assert_eq!(p.price(&a), 8);
        for _ in 0..140 {
            p.paid(&a);
        }
        assert_eq!(
            p.price(&a),
            9,
            "up to twice the allowed count: one bit more"
        );
        for _ in 0..290 {
            p.paid(&a);
        }
        assert_eq!(p.price(&a), 10);
        assert_eq!(p.price(&b), 8, "mailboxes are priced apart");
        let capped = StampPrice::new(27, 1);
        for _ in 0..1000 {
            capped.paid(&a);
        }
        assert_eq!(capped.price(&a), MAX_STAMP_BITS);
        let flat = StampPrice::new(3, 0);
        for _ in 0..1000 {
            flat.paid(&a);
        }
        assert_eq!(flat.price(&a), 3, "rate 0: the price never rises");
    }
}
