//! Counters for `/metrics` in the Prometheus text format (DS-12). Labels are fixed words,
//! never mailbox ids.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Latency histogram bucket bounds, seconds.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

#[derive(Default)]
struct Histogram {
    counts: [AtomicU64; 10],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (b, c) in BUCKETS.iter().zip(&self.counts) {
            if s <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, name: &str, out: &mut String) {
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (b, c) in BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let n = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {n}");
    }
}

/// The service's metrics.
///
/// ```
/// use atmls_ds::metrics::Metrics;
/// use std::time::Duration;
/// let m = Metrics::default();
/// m.post("commit", "accepted", Duration::from_micros(300));
/// m.fetch(3, Duration::from_millis(2));
/// let text = m.render();
/// assert!(text.contains("atmls_ds_posts_total{kind=\"commit\",outcome=\"accepted\"} 1"));
/// assert!(text.contains("atmls_ds_fetched_items_total 3"));
/// ```
#[derive(Default)]
pub struct Metrics {
    posts: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    blobs: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    blob_bytes_in: AtomicU64,
    blob_bytes_out: AtomicU64,
    fetches: AtomicU64,
    fetched_items: AtomicU64,
    stored_bytes: AtomicU64,
    pruned: AtomicU64,
    subscribers: AtomicI64,
    post_latency: Histogram,
    fetch_latency: Histogram,
}

impl Metrics {
    /// Counts a post of `kind` with `outcome` (both fixed words).
    ///
    /// ```
    /// use atmls_ds::metrics::Metrics;
    /// use std::time::Duration;
    /// let m = Metrics::default();
    /// m.post("message", "accepted", Duration::from_micros(300));
    /// m.post("message", "accepted", Duration::from_millis(20));
    /// m.post("commit", "epoch_taken", Duration::from_millis(1));
    /// let text = m.render();
    /// assert!(text.contains("atmls_ds_posts_total{kind=\"message\",outcome=\"accepted\"} 2"));
    /// assert!(text.contains("atmls_ds_posts_total{kind=\"commit\",outcome=\"epoch_taken\"} 1"));
    /// // Latency: one post within 0.5 ms, three in all.
    /// assert!(text.contains("atmls_ds_post_duration_seconds_bucket{le=\"0.0005\"} 1"));
    /// assert!(text.contains("atmls_ds_post_duration_seconds_count 3"));
    /// ```
    pub fn post(&self, kind: &'static str, outcome: &'static str, d: Duration) {
        if let Ok(mut p) = self.posts.lock() {
            *p.entry((kind, outcome)).or_default() += 1;
        }
        self.post_latency.observe(d);
    }

    /// Counts a blob request `op` (create, chunk, complete, erase, download) with `outcome`
    /// (both fixed words; never a mailbox or blob id, DS-12).
    ///
    /// ```
    /// use atmls_ds::metrics::Metrics;
    /// let m = Metrics::default();
    /// m.blob("create", "reserved");
    /// m.blob("create", "over_budget");
    /// let text = m.render();
    /// assert!(text.contains("atmls_ds_blob_requests_total{op=\"create\",outcome=\"reserved\"} 1"));
    /// assert!(text.contains("atmls_ds_blob_requests_total{op=\"create\",outcome=\"over_budget\"} 1"));
    /// ```
    pub fn blob(&self, op: &'static str, outcome: &'static str) {
        if let Ok(mut b) = self.blobs.lock() {
            *b.entry((op, outcome)).or_default() += 1;
        }
    }

    /// Counts blob bytes received in chunks (`upload`) or sent in downloads.
    ///
    /// ```
    /// use atmls_ds::metrics::Metrics;
    /// let m = Metrics::default();
    /// m.blob_bytes(true, 262_144);
    /// m.blob_bytes(false, 1000);
    /// m.blob_bytes(false, 24);
    /// let text = m.render();
    /// assert!(text.contains("atmls_ds_blob_received_bytes_total 262144"));
    /// assert!(text.contains("atmls_ds_blob_sent_bytes_total 1024"));
    /// ```
    pub fn blob_bytes(&self, upload: bool, bytes: u64) {
        let c = if upload {
            &self.blob_bytes_in
        } else {
            &self.blob_bytes_out
        };
        c.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts stored payload bytes.
    ///
    /// ```
    /// use atmls_ds::metrics::Metrics;
    /// let m = Metrics::default();
    /// m.stored(100);
    /// m.stored(28);
    /// assert!(m.render().contains("atmls_ds_stored_bytes_total 128"));
    /// ```
    pub fn stored(&self, bytes: usize) {
        self.stored_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts a fetch returning `items`.
    ///
    /// ```
    /// use atmls_ds::metrics::Metrics;
    /// use std::time::Duration;
    /// let m = Metrics::default();
    /// m.fetch(3, Duration::from_millis(2));
    /// m.fetch(0, Duration::from_secs(30));
    /// let text = m.render();
    /// assert!(text.contains("atmls_ds_fetches_total 2"));
    /// assert!(text.contains("atmls_ds_fetched_items_total 3"));
    /// // The 30 s long poll is above every bucket but +Inf.
    /// assert!(text.contains("atmls_ds_fetch_duration_seconds_bucket{le=\"2.5\"} 1"));
    /// assert!(text.contains("atmls_ds_fetch_duration_seconds_bucket{le=\"+Inf\"} 2"));
    /// ```
    pub fn fetch(&self, items: usize, d: Duration) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.fetched_items
            .fetch_add(items as u64, Ordering::Relaxed);
        self.fetch_latency.observe(d);
    }

    /// Counts pruned items.
    ///
    /// ```
    /// use atmls_ds::metrics::Metrics;
    /// let m = Metrics::default();
    /// m.pruned(5);
    /// m.pruned(2);
    /// assert!(m.render().contains("atmls_ds_pruned_items_total 7"));
    /// ```
    pub fn pruned(&self, n: u64) {
        self.pruned.fetch_add(n, Ordering::Relaxed);
    }

    /// One more (+1) or one fewer (-1) open subscription.
    ///
    /// ```
    /// use atmls_ds::metrics::Metrics;
    /// let m = Metrics::default();
    /// m.subscribers(1);
    /// m.subscribers(1);
    /// m.subscribers(-1);
    /// assert!(m.render().contains("atmls_ds_subscriptions 1"));
    /// ```
    pub fn subscribers(&self, delta: i64) {
        self.subscribers.fetch_add(delta, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    ///
    /// ```
    /// use atmls_ds::metrics::Metrics;
    /// let text = Metrics::default().render();
    /// // Every series has its TYPE line, counters start at 0.
    /// assert!(text.contains("# TYPE atmls_ds_posts_total counter"));
    /// assert!(text.contains("# TYPE atmls_ds_subscriptions gauge"));
    /// assert!(text.contains("atmls_ds_fetches_total 0"));
    /// assert!(text.contains("# TYPE atmls_ds_post_duration_seconds histogram"));
    /// ```
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# TYPE atmls_ds_posts_total counter\n");
        if let Ok(p) = self.posts.lock() {
            for ((kind, outcome), n) in p.iter() {
                let _ = writeln!(
                    out,
                    "atmls_ds_posts_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out.push_str("# TYPE atmls_ds_blob_requests_total counter\n");
        if let Ok(b) = self.blobs.lock() {
            for ((op, outcome), n) in b.iter() {
                let _ = writeln!(
                    out,
                    "atmls_ds_blob_requests_total{{op=\"{op}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        for (name, kind, v) in [
            (
                "atmls_ds_blob_received_bytes_total",
                "counter",
                &self.blob_bytes_in,
            ),
            (
                "atmls_ds_blob_sent_bytes_total",
                "counter",
                &self.blob_bytes_out,
            ),
            ("atmls_ds_fetches_total", "counter", &self.fetches),
            (
                "atmls_ds_fetched_items_total",
                "counter",
                &self.fetched_items,
            ),
            ("atmls_ds_stored_bytes_total", "counter", &self.stored_bytes),
            ("atmls_ds_pruned_items_total", "counter", &self.pruned),
        ] {
            let _ = writeln!(
                out,
                "# TYPE {name} {kind}\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# TYPE atmls_ds_subscriptions gauge\natmls_ds_subscriptions {}",
            self.subscribers.load(Ordering::Relaxed)
        );
        self.post_latency
            .render("atmls_ds_post_duration_seconds", &mut out);
        self.fetch_latency
            .render("atmls_ds_fetch_duration_seconds", &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_12_metrics_render_counters() {
        let m = Metrics::default();
        m.post("commit", "accepted", Duration::from_micros(300));
        m.fetch(3, Duration::from_millis(2));
        m.blob("create", "reserved");
        m.blob_bytes(true, 262_144);
        let s = m.render();
        assert!(s.contains("atmls_ds_blob_requests_total{op=\"create\",outcome=\"reserved\"} 1"));
        assert!(s.contains("atmls_ds_blob_received_bytes_total 262144"));
        assert!(s.contains("atmls_ds_blob_sent_bytes_total 0"));
        assert!(s.contains("atmls_ds_posts_total{kind=\"commit\",outcome=\"accepted\"} 1"));
        assert!(s.contains("atmls_ds_fetched_items_total 3"));
        assert!(s.contains("atmls_ds_post_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(s.contains("atmls_ds_fetch_duration_seconds_count 1"));
    }
}
