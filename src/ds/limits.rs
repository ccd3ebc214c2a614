//! Rate limits (DS-9): a token bucket per key (mailbox, client address), in memory per process.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

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
}
