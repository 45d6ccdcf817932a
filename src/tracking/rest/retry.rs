//! When and how long to wait before sending a request to the tracking server again.

use std::time::Duration;

use rand::Rng;
use reqwest::blocking::Response;

/// Statuses worth retrying, as MLflow's client (`mlflow/utils/rest_utils.py`).
pub(crate) const RETRY_STATUSES: [u16; 6] = [408, 429, 500, 502, 503, 504];

/// Retries with exponential backoff: the wait before retry `n` (from 1) is
/// `backoff_factor * 2^(n-1)`, at most `backoff_cap`, plus up to `jitter` at random.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub backoff_factor: Duration,
    pub backoff_cap: Duration,
    pub jitter: Duration,
}

impl Default for RetryPolicy {
    /// MLflow's client: 7 retries, factor 2 s, jitter 1 s; capped at a minute here.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 7,
            backoff_factor: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(60),
            jitter: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry `retry` (1-based).
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let exp = 2u32.saturating_pow(retry.saturating_sub(1).min(30));
        let base = self
            .backoff_factor
            .saturating_mul(exp)
            .min(self.backoff_cap);
        let jitter_ms = self.jitter.as_millis() as u64;
        let jitter = if jitter_ms > 0 {
            rng.gen_range(0..=jitter_ms)
        } else {
            0
        };
        base + Duration::from_millis(jitter)
    }
}

/// The server's `Retry-After` in seconds, when it sends one.
pub(super) fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_exponentially_and_are_capped() {
        let p = RetryPolicy {
            max_retries: 7,
            backoff_factor: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(60),
            jitter: Duration::ZERO,
        };
        let mut rng = rand::thread_rng();
        let delays: Vec<u64> = (1..=7).map(|n| p.delay(n, &mut rng).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60]);
        let j = RetryPolicy {
            jitter: Duration::from_millis(500),
            ..p
        };
        let d = j.delay(1, &mut rng);
        assert!(d >= Duration::from_secs(2) && d <= Duration::from_millis(2500));
    }
}
