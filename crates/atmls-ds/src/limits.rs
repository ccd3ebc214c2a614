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
///
/// ```
/// use atmls_ds::limits::RateLimiter;
/// // 1 request per second: a burst of 2, then refused (a machine that stalls for a second
/// // meanwhile refills one more).
/// let per_client = RateLimiter::new(1);
/// let allowed = (0..10).filter(|_| per_client.allow(&"192.0.2.1")).count();
/// assert!((2..=3).contains(&allowed), "{allowed}");
/// // Keys are limited apart.
/// assert!(per_client.allow(&"192.0.2.2"));
/// ```
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter of `rate` requests per second per key (0: unlimited).
    ///
    /// ```
    /// use atmls_ds::limits::RateLimiter;
    /// let limited = RateLimiter::new(5);
    /// // A burst of 10, then refused (a slow machine may refill one more token meanwhile).
    /// let allowed = (0..100).filter(|_| limited.allow(&1u8)).count();
    /// assert!((10..=11).contains(&allowed), "{allowed}");
    /// // Rate 0: no limit.
    /// let unlimited = RateLimiter::new(0);
    /// assert!((0..1000).all(|_| unlimited.allow(&1u8)));
    /// ```
    pub fn new(rate: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate),
            burst: f64::from(rate) * 2.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; false when the key is over its rate.
    ///
    /// ```
    /// use atmls_ds::limits::RateLimiter;
    /// let r = RateLimiter::new(2);
    /// let allowed = (0..10).filter(|_| r.allow(&[7u8; 32])).count();
    /// // Bursts of twice the rate (one more if the machine stalls for half a second).
    /// assert!((4..=5).contains(&allowed), "{allowed}");
    /// assert!(r.allow(&[8u8; 32]));
    /// ```
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
///
/// ```
/// use atmls_ds::limits::StampPrice;
/// use atmls_ds_wire::stamp::MAX_STAMP_BITS;
/// // 8 bits, rising above 10 posts per second per mailbox.
/// let price = StampPrice::new(8, 10);
/// let mailbox = [1u8; 32];
/// assert_eq!(price.price(&mailbox), 8);
/// // A flood: 10/s settles at about 144 recent posts; well past that costs more.
/// for _ in 0..400 {
///     price.paid(&mailbox);
/// }
/// assert!(price.price(&mailbox) > 8);
/// assert_eq!(price.price(&[2u8; 32]), 8, "mailboxes are priced apart");
/// assert!(price.price(&mailbox) <= MAX_STAMP_BITS);
/// ```
pub struct StampPrice {
    base: u8,
    /// The recent-post count that `rate` per second settles at.
    allowed: f64,
    load: Mutex<HashMap<[u8; 32], (f64, Instant)>>,
}

impl StampPrice {
    /// A price of `base` bits that rises above `rate` posts per second per mailbox (0: never
    /// rises).
    ///
    /// ```
    /// use atmls_ds::limits::StampPrice;
    /// use atmls_ds_wire::stamp::MAX_STAMP_BITS;
    /// // The base is capped at what a client pays.
    /// assert_eq!(StampPrice::new(40, 10).price(&[0; 32]), MAX_STAMP_BITS);
    /// // Rate 0: the price never rises.
    /// let flat = StampPrice::new(3, 0);
    /// for _ in 0..1000 {
    ///     flat.paid(&[0; 32]);
    /// }
    /// assert_eq!(flat.price(&[0; 32]), 3);
    /// ```
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
    ///
    /// ```
    /// use atmls_ds::limits::StampPrice;
    /// use atmls_ds_wire::{stamp::{make_stamp, stamp_ok}, MailboxId};
    /// let prices = StampPrice::new(4, 10);
    /// let mailbox = MailboxId([9; 32]);
    /// let bits = prices.price(&mailbox.0);
    /// assert_eq!(bits, 4);
    /// // What a poster pays, and the service checks.
    /// let nonce = make_stamp(&mailbox, &[1; 16], b"invite", bits).unwrap();
    /// assert!(stamp_ok(&mailbox, &[1; 16], b"invite", nonce, bits));
    /// ```
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
    ///
    /// ```
    /// use atmls_ds::limits::StampPrice;
    /// use atmls_ds_wire::stamp::MAX_STAMP_BITS;
    /// let prices = StampPrice::new(27, 1);
    /// for _ in 0..1000 {
    ///     prices.paid(&[1; 32]);
    /// }
    /// // Never above what a client pays.
    /// assert_eq!(prices.price(&[1; 32]), MAX_STAMP_BITS);
    /// ```
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
