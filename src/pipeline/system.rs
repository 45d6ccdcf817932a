//! System metrics while a model fits and is scored, under MLflow's own names
//! (`system/cpu_utilization_percentage`, `system/system_memory_usage_megabytes`,
//! `system/system_memory_usage_percentage`, as its `SystemMetricsMonitor` logs them), sampled
//! every second and once more when the fit ends, so even a fit of milliseconds has one sample.
//! The process's peak resident memory is recflow's own `peak_rss_megabytes`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sysinfo::System;

use crate::tracking::{now_ms, Metric};

/// How often a sample is taken while a fit runs.
pub const EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Sample {
    at_ms: i64,
    cpu_percent: f64,
    memory_mb: f64,
    memory_percent: f64,
}

fn sample(sys: &mut System) -> Sample {
    sys.refresh_cpu_usage();
    sys.refresh_memory();
    let total = sys.total_memory() as f64;
    let used = sys.used_memory() as f64;
    Sample {
        at_ms: now_ms(),
        cpu_percent: f64::from(sys.global_cpu_usage()),
        memory_mb: used / 1e6,
        memory_percent: if total > 0.0 {
            100.0 * used / total
        } else {
            0.0
        },
    }
}

/// Samples on a thread of its own from [`Sampler::start`] until [`Sampler::finish`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Vec<Sample>>>,
}

impl Sampler {
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("system-metrics".into())
            .spawn(move || {
                let mut sys = System::new();
                // CPU usage is measured between two refreshes: this one is the first.
                sys.refresh_cpu_usage();
                let mut out = Vec::new();
                let mut last = Instant::now();
                // Parked until the next sample is due; `finish` unparks it at once.
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(EVERY.saturating_sub(last.elapsed()));
                    if !flag.load(Ordering::Relaxed) && last.elapsed() >= EVERY {
                        out.push(sample(&mut sys));
                        last = Instant::now();
                    }
                }
                out.push(sample(&mut sys));
                out
            })
            .ok();
        Sampler { stop, handle }
    }

    /// Stops sampling; the samples as metrics (step = sample number) and the process's peak
    /// resident memory.
    pub fn finish(mut self) -> Vec<Metric> {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self
            .handle
            .take()
            .and_then(|h| {
                h.thread().unpark();
                h.join().ok()
            })
            .unwrap_or_default();
        let mut out = Vec::with_capacity(samples.len() * 3 + 1);
        for (i, s) in samples.iter().enumerate() {
            for (key, value) in [
                ("system/cpu_utilization_percentage", s.cpu_percent),
                ("system/system_memory_usage_megabytes", s.memory_mb),
                ("system/system_memory_usage_percentage", s.memory_percent),
            ] {
                let mut m = Metric::new(key, value, i as i64);
                m.timestamp = s.at_ms;
                out.push(m);
            }
        }
        if let Some(mb) = peak_rss_megabytes() {
            out.push(Metric::new("peak_rss_megabytes", mb, 0));
        }
        out
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = &self.handle {
            h.thread().unpark();
        }
    }
}

/// The process's peak resident memory so far (Linux's `VmHWM`), in MB.
fn peak_rss_megabytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_fit_still_gets_one_sample_of_each_system_metric_and_the_peak_memory() {
        let s = Sampler::start();
        let m = s.finish();
        for key in [
            "system/cpu_utilization_percentage",
            "system/system_memory_usage_megabytes",
            "system/system_memory_usage_percentage",
        ] {
            let v: Vec<&Metric> = m.iter().filter(|x| x.key == key).collect();
            assert_eq!(v.len(), 1, "{key}");
            assert!(v[0].value.is_finite() && v[0].value >= 0.0);
        }
        let mem = m
            .iter()
            .find(|x| x.key == "system/system_memory_usage_percentage")
            .unwrap();
        assert!(mem.value <= 100.0);
        if cfg!(target_os = "linux") {
            let peak = m.iter().find(|x| x.key == "peak_rss_megabytes").unwrap();
            assert!(peak.value > 1.0, "{}", peak.value);
        }
    }
}
