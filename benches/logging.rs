//! MLflow logging throughput through recflow's tracking library, on the workload of
//! ../shared/peers/peer_mlflow_logging.py: RUNS x (20 params + 10 metrics x 100 steps), batched.
//! Usage: cargo bench --bench logging -- URI RUNS [THREADS]   (prints one JSON line)
// A benchmark reports its figures on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use recflow::tracking::{
    now_ms, open_tracker, Batch, Metric, NewRun, Param, RunStatus, Tracker, TrackingSettings,
};

fn log_one(t: &dyn Tracker, exp: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let run = t.create_run(&NewRun::new(exp, "r"))?;
    let ts = now_ms();
    let params: Vec<Param> = (0..20)
        .map(|i| Param::new(format!("p{i}"), i.to_string()))
        .collect();
    let metrics: Vec<Metric> = (0..10)
        .flat_map(|j| {
            (0..100).map(move |s| Metric {
                key: format!("m{j}"),
                value: 0.5 + s as f64 * 1e-3,
                timestamp: ts,
                step: s,
            })
        })
        .collect();
    t.log_batch(
        &run.run_id,
        &Batch {
            params,
            metrics,
            tags: vec![],
        },
    )?;
    t.end_run(&run.run_id, RunStatus::Finished, now_ms())?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let uri = args
        .first()
        .ok_or("usage: logging URI RUNS [THREADS]")?
        .clone();
    let runs: usize = args.get(1).map_or(Ok(50), |s| s.parse())?;
    let threads: usize = args.get(2).map_or(Ok(1), |s| s.parse())?;
    let settings = TrackingSettings {
        timeout: Duration::from_secs(60),
        ..TrackingSettings::default()
    };
    let t: Arc<dyn Tracker> = Arc::from(open_tracker(&uri, &settings)?);
    let exp = t.get_or_create_experiment(&format!("bench-recflow-{}", now_ms()), None, &[])?;
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                let (t, exp) = (t.clone(), exp.clone());
                s.spawn(
                    move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                        for _ in (w..runs).step_by(threads) {
                            log_one(t.as_ref(), &exp)?;
                        }
                        Ok(())
                    },
                )
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| "worker panicked")?)
    })?;
    let el = t0.elapsed().as_secs_f64();
    println!(
        "{{\"system\": \"recflow\", \"runs\": {runs}, \"threads\": {threads}, \"seconds\": {el:.3}, \"per_run_s\": {:.4}}}",
        el / runs as f64
    );
    Ok(())
}
