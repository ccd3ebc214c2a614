//! The time a client reads: the system clock by default, a simulated one in tests
//! ([`ClientBuilder::clock`](crate::ClientBuilder::clock)). Everything a client decides by the
//! clock (KeyPackage lifetimes, certificate periods at add time and in the trust checks,
//! disappearing-message expiry, grace periods, invite expiry, lookup back-off) reads it here;
//! code without a client (the delivery service, the command-line tool) reads
//! [`unix_now`](crate::identity::unix_now).

/// A source of wall-clock time, in seconds since the Unix epoch.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use atmls::clock::Clock;
/// /// A clock a test moves by hand.
/// struct Manual(AtomicU64);
/// impl Clock for Manual {
///     fn now(&self) -> u64 {
///         self.0.load(Ordering::SeqCst)
///     }
/// }
/// let clock = Arc::new(Manual(AtomicU64::new(1_700_000_000)));
/// clock.0.fetch_add(3600, Ordering::SeqCst); // an hour later
/// assert_eq!(clock.now(), 1_700_003_600);
/// // What `ClientBuilder::clock` takes.
/// let _for_a_client: Arc<dyn Clock> = clock;
/// ```
pub trait Clock: Send + Sync {
    /// The current time (unix seconds).
    ///
    /// ```
    /// use atmls::clock::{Clock, SystemClock};
    /// fn expired(clock: &dyn Clock, expires: u64) -> bool {
    ///     clock.now() >= expires
    /// }
    /// assert!(expired(&SystemClock, 1_700_000_000));
    /// assert!(!expired(&SystemClock, u64::MAX));
    /// ```
    fn now(&self) -> u64;
}

/// The system clock ([`unix_now`](crate::identity::unix_now)): the default.
///
/// ```
/// use atmls::clock::{Clock, SystemClock};
/// let (read, now) = (SystemClock.now(), atmls::identity::unix_now());
/// assert!(now.abs_diff(read) <= 1);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        crate::identity::unix_now()
    }
}
