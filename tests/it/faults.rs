//! Fault injection: stop signals at random moments of a whole experiment.
//! `make fault-test` runs these with more repetitions (`RECFLOW_FAULT_KILLS`).

use crate::util::Dir;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs whose `meta.yaml` still says RUNNING (status 1), under an MLflow file store.
fn running_runs(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for exp in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for run in std::fs::read_dir(exp.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let meta = run.path().join("meta.yaml");
            if std::fs::read_to_string(&meta).is_ok_and(|t| t.contains("status: 1\n")) {
                out.push(meta.display().to_string());
            }
        }
    }
    out
}

#[test]
fn stops_at_random_moments_exit_128_plus_the_signal_and_never_crash() {
    let kills: usize = std::env::var("RECFLOW_FAULT_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let d = Dir::new();
    d.run(&[
        "generate",
        "--out",
        "data/raw/sample_reviews.json.gz",
        "--items-meta",
        "data/raw/sample_meta.json.gz",
    ])
    .ok();
    d.write(
        "experiments/quickstart.toml",
        include_str!("../../experiments/quickstart.toml"),
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    for i in 0..kills {
        let _ = std::fs::remove_dir_all(d.join("mlruns"));
        let _ = std::fs::remove_dir_all(d.join("artifacts"));
        if i % 4 == 0 {
            // Now and then the ETL runs again, so some stops land in it.
            let _ = std::fs::remove_dir_all(d.join("data/processed"));
        }
        let (name, sig) = if i % 2 == 0 { ("INT", 2) } else { ("TERM", 15) };
        let child = Command::new(env!("CARGO_BIN_EXE_recflow"))
            .current_dir(d.path())
            .args(["-q", "--no-progress", "run", "experiments/quickstart.toml"])
            .env_remove("MLFLOW_TRACKING_URI")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start recflow");
        let delay = Duration::from_millis(rng.gen_range(100..3000));
        std::thread::sleep(delay);
        Command::new("kill")
            .args([&format!("-{name}"), &child.id().to_string()])
            .status()
            .expect("kill");
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!("stop {i} (SIG{name} after {delay:?})");
        // A run that finished before the signal exits 0; anything else is 128 + the signal.
        assert!(
            matches!(out.status.code(), Some(0)) || out.status.code() == Some(128 + sig),
            "{what}: exit {:?} (a crash has no code)\n{stderr}",
            out.status
        );
        for sign in [
            "panicked",
            "BLAS",
            "Segmentation",
            "double free",
            "core dumped",
        ] {
            assert!(!stderr.contains(sign), "{what}: `{sign}` in\n{stderr}");
        }
        let open = running_runs(&d.join("mlruns"));
        assert!(open.is_empty(), "{what}: left RUNNING: {open:?}");
    }
    // A stopped run never breaks the next one.
    let _ = std::fs::remove_dir_all(d.join("mlruns"));
    d.run(&["-q", "run", "experiments/quickstart.toml"]).ok();
}
