//! The time a client reads: the system clock by default, a simulated one in tests
//! ([`ClientBuilder::clock`](crate::ClientBuilder::clock)). Everything a client decides by the
//! clock (KeyPackage lifetimes, certificate periods at add time and in the trust checks,
//! disappearing-message expiry, grace periods, invite expiry, lookup back-off) reads it here;
//! code without a client (the delivery service, the command-line tool) reads
//! [`unix_now`](crate::identity::unix_now).

/// A source of wall-clock time, in seconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// The current time (unix seconds).
    fn now(&self) -> u64;
}

/// The system clock ([`unix_now`](crate::identity::unix_now)): the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        crate::identity::unix_now()
    }
}
