//! Counters behind `GET /metrics`, rendered in Prometheus' text format (version 0.0.4).
//!
//! Requests by route template, method and status; a latency histogram per route; how many
//! recommendation lists came from the model and how many from the cold-start list (and the
//! cold-start share); model loads; the scoring queue. Labels use route templates, never raw
//! paths, so unknown URLs cannot grow the label set. Knows nothing about the model's contents.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, MutexGuard};

/// Upper bounds (seconds) of the latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is above every bound.
    counts: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let slot = LATENCY_BUCKETS.partition_point(|&b| b < seconds);
        self.counts[slot] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Registry {
    requests: BTreeMap<(String, &'static str, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    als: u64,
    popular: u64,
    loads_ok: u64,
    loads_failed: u64,
}

/// What the model slot and the scorer report at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub model_loaded: bool,
    pub run_id: Option<String>,
    pub model_source: Option<String>,
    pub scoring_queue: usize,
    pub scoring_threads: usize,
    /// Batches the scoring threads took, and the queries in them.
    pub scoring_batches: u64,
    pub scoring_batched_queries: u64,
}

/// The server's counters. One lock: updates are a few additions, so it is never held long.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Registry>,
}

/// `method` as a label from a fixed set.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

impl Metrics {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Counters stay usable after a panic elsewhere: each update is a few additions.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One answered request. `route` is the matched route template (or `unmatched`).
    pub fn record_request(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        let mut r = self.lock();
        *r.requests
            .entry((route.to_string(), method, status))
            .or_default() += 1;
        match r.latency.get_mut(route) {
            Some(h) => h.observe(seconds),
            None => {
                let mut h = Histogram::default();
                h.observe(seconds);
                r.latency.insert(route.to_string(), h);
            }
        }
    }

    /// Recommendation lists served: `als` from the model, `popular` from the cold-start list.
    pub fn record_lists(&self, als: u64, popular: u64) {
        let mut r = self.lock();
        r.als += als;
        r.popular += popular;
    }

    pub fn record_load(&self, ok: bool) {
        let mut r = self.lock();
        if ok {
            r.loads_ok += 1;
        } else {
            r.loads_failed += 1;
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, g: &Gauges) -> String {
        let r = self.lock();
        let mut out = String::with_capacity(4096);
        let mut put = |s: &str| out.push_str(s);
        put("# HELP recflow_http_requests_total HTTP requests answered, by route template, method and status.\n");
        put("# TYPE recflow_http_requests_total counter\n");
        let mut lines = String::new();
        for ((route, method, status), n) in &r.requests {
            let _ = writeln!(
                lines,
                "recflow_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        put(&lines);
        put("# HELP recflow_http_request_duration_seconds Time from request to response, by route template.\n");
        put("# TYPE recflow_http_request_duration_seconds histogram\n");
        let mut lines = String::new();
        for (route, h) in &r.latency {
            let route = escape(route);
            let mut cumulative = 0;
            for (bound, n) in LATENCY_BUCKETS.iter().zip(&h.counts) {
                cumulative += n;
                let _ = writeln!(
                    lines,
                    "recflow_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                lines,
                "recflow_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 recflow_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 recflow_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        put(&lines);
        let share = if r.als + r.popular > 0 {
            r.popular as f64 / (r.als + r.popular) as f64
        } else {
            0.0
        };
        let mut lines = String::new();
        let _ = write!(
            lines,
            "# HELP recflow_recommendations_total Recommendation lists served, by strategy (popular: cold start).\n\
             # TYPE recflow_recommendations_total counter\n\
             recflow_recommendations_total{{strategy=\"als\"}} {}\n\
             recflow_recommendations_total{{strategy=\"popular\"}} {}\n\
             # HELP recflow_cold_start_share Share of recommendation lists served from the cold-start list.\n\
             # TYPE recflow_cold_start_share gauge\n\
             recflow_cold_start_share {share}\n\
             # HELP recflow_model_loads_total Model loads (the first and every reload), by result.\n\
             # TYPE recflow_model_loads_total counter\n\
             recflow_model_loads_total{{result=\"ok\"}} {}\n\
             recflow_model_loads_total{{result=\"error\"}} {}\n\
             # HELP recflow_model_loaded Whether a model is loaded (1) or not yet (0).\n\
             # TYPE recflow_model_loaded gauge\n\
             recflow_model_loaded {}\n\
             # HELP recflow_scoring_queue_length Queries waiting for a scoring thread.\n\
             # TYPE recflow_scoring_queue_length gauge\n\
             recflow_scoring_queue_length {}\n\
             # HELP recflow_scoring_threads Scoring threads.\n\
             # TYPE recflow_scoring_threads gauge\n\
             recflow_scoring_threads {}\n\
             # HELP recflow_scoring_batches_total Batches scored (queries grouped into one product).\n\
             # TYPE recflow_scoring_batches_total counter\n\
             recflow_scoring_batches_total {}\n\
             # HELP recflow_scoring_queries_total Queries scored (over batches: the mean batch size).\n\
             # TYPE recflow_scoring_queries_total counter\n\
             recflow_scoring_queries_total {}\n",
            r.als,
            r.popular,
            r.loads_ok,
            r.loads_failed,
            u8::from(g.model_loaded),
            g.scoring_queue,
            g.scoring_threads,
            g.scoring_batches,
            g.scoring_batched_queries,
        );
        if g.model_loaded {
            let _ = write!(
                lines,
                "# HELP recflow_model_info The loaded model (value always 1).\n\
                 # TYPE recflow_model_info gauge\n\
                 recflow_model_info{{run_id=\"{}\",source=\"{}\"}} 1\n",
                escape(g.run_id.as_deref().unwrap_or("")),
                escape(g.model_source.as_deref().unwrap_or("")),
            );
        }
        put(&lines);
        out
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let m = Metrics::default();
        m.record_request("/health", "GET", 200, 0.0001);
        m.record_request("/health", "GET", 200, 0.003);
        m.record_request("/health", "GET", 200, 60.0);
        let text = m.render(&Gauges::default());
        assert!(text.contains(
            "recflow_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.0005\"} 1\n"
        ));
        assert!(text.contains(
            "recflow_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.005\"} 2\n"
        ));
        assert!(text.contains(
            "recflow_http_request_duration_seconds_bucket{route=\"/health\",le=\"+Inf\"} 3\n"
        ));
        assert!(text.contains(
            "recflow_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"} 3\n"
        ));
    }

    #[test]
    fn cold_start_share_is_popular_over_all_lists() {
        let m = Metrics::default();
        m.record_lists(3, 1);
        let text = m.render(&Gauges::default());
        assert!(text.contains("recflow_cold_start_share 0.25\n"));
        assert!(text.contains("recflow_recommendations_total{strategy=\"popular\"} 1\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
