//! `recflow run` and the run commands against MLflow itself: the file store read by MLflow's
//! Python client, a real `mlflow server` over REST, concurrency, failures before training.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{python_or_skip, Dir, Run};

const SPEC: &str = r#"
[experiment]
name = "it-quick"
description = "integration test"
tags = { suite = "it" }

[data]
input = "r.json.gz"
min_interactions = 5

[split]
test_fraction = 0.2
validation_fraction = 0.1
seed = 7

[model]
max_iter = 3

[grid]
rank = [2, 4]
reg = [0.1, 0.5]

[eval]
k = 10
baselines = []
"#;

fn prepared() -> Dir {
    let d = Dir::new();
    d.generate(300, 120, 4000, 5);
    d.write("experiments/it.toml", SPEC);
    d
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

fn py_json(py: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(py).args(args).output().expect("python");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The runs of experiment `it-quick` at `uri`, as MLflow's own client reads them.
fn client_read(py: &Path, uri: &str) -> serde_json::Value {
    py_json(
        py,
        &[
            script("mlflow_client.py").to_str().unwrap(),
            "read",
            uri,
            "it-quick",
        ],
    )
}

#[test]
fn spec_errors_stop_before_any_work() {
    let d = prepared();
    d.write(
        "experiments/bad.toml",
        SPEC.replace("rank = [2, 4]", "rnak = [2, 4]"),
    );
    let run = d.run(&["run", "experiments/bad.toml"]).fails_with(1);
    assert!(
        run.stderr
            .contains("experiments/bad.toml:20: unknown key `rnak` in `[grid]`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: did you mean `rank`?"),
        "{}",
        run.stderr
    );
    assert!(
        !d.join("mlruns").exists() && !d.join("data/processed").exists(),
        "no work was done"
    );
}

#[test]
fn unusable_tracking_uris_stop_before_training() {
    let d = prepared();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("http://127.0.0.1:{port}");
    let run = d
        .run(&["run", "experiments/it.toml", "--tracking-uri", &uri])
        .fails_with(1);
    assert!(run.stderr.contains("unreachable"), "{}", run.stderr);
    assert!(
        run.stderr.contains("--tracking-uri file:./mlruns"),
        "{}",
        run.stderr
    );
    assert!(!d.join("artifacts").exists(), "nothing was trained");
    let run = d
        .run(&[
            "run",
            "experiments/it.toml",
            "--tracking-uri",
            "sqlite:///mlflow.db",
        ])
        .fails_with(1);
    assert!(
        run.stderr
            .contains("mlflow server --backend-store-uri sqlite:///mlflow.db"),
        "{}",
        run.stderr
    );
}

#[test]
fn run_logs_nested_runs_that_mlflow_reads_and_migrates() {
    let Some(py) = python_or_skip("run_logs_nested_runs_that_mlflow_reads_and_migrates") else {
        return;
    };
    let d = prepared();
    let out = d.run(&["run", "experiments/it.toml", "--json"]).ok().json();
    let parent = out["parent_run_id"].as_str().unwrap().to_string();
    // Four trials and the selected configuration's refit.
    assert_eq!(out["child_run_ids"].as_array().unwrap().len(), 5);
    assert_eq!(
        std::fs::read_to_string(d.join("artifacts/metrics/mlflow_run_id.txt"))
            .unwrap()
            .trim(),
        parent
    );
    let seen = py_json(
        &py,
        &[
            script("check_mlflow_filestore.py").to_str().unwrap(),
            d.join("mlruns").to_str().unwrap(),
        ],
    );
    assert_eq!(
        seen["migrated_equal"], true,
        "mlflow migrate-filestore round trip"
    );
    let exp = seen["filestore"]["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "it-quick")
        .unwrap()
        .clone();
    let runs = exp["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6);
    let p = runs
        .iter()
        .find(|r| r["run_id"] == parent.as_str())
        .unwrap();
    assert_eq!(p["status"], "FINISHED");
    for tag in [
        "mlflow.runName",
        "mlflow.user",
        "mlflow.source.name",
        "mlflow.source.type",
        "mlflow.note.content",
        "best_run_id",
        "recflow.version",
    ] {
        assert!(p["tags"].get(tag).is_some(), "parent tag {tag}");
    }
    assert_eq!(p["tags"]["suite"], "it");
    // The winner's test figures exactly as recflow reported them, under `best.`.
    for (k, v) in out["winner"]["test"].as_object().unwrap() {
        assert_eq!(
            p["metrics"][format!("best.{k}")].as_f64(),
            v.as_f64(),
            "{k}"
        );
    }
    let arts: Vec<&str> = p["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    for a in [
        "spec.toml",
        "etl_summary.json",
        "plots/learning_curves_als.png",
        "eda/report.html",
        "leaderboard.csv",
    ] {
        assert!(arts.contains(&a), "artifact {a} in {arts:?}");
    }
    // The winner is one MLflow LoggedModel made by its final child, which both runs record as
    // an output; it is not copied into the parent's artifacts.
    assert!(!arts.iter().any(|a| a.starts_with("model/")), "{arts:?}");
    let models = exp["logged_models"].as_array().unwrap();
    assert_eq!(models.len(), 1, "{models:?}");
    let m = &models[0];
    assert_eq!(m["model_id"], out["model_id"]);
    assert_eq!(m["source_run_id"], out["best_run_id"]);
    assert!(m["status"].as_str().unwrap().contains("READY"), "{m}");
    assert!(m["params"].get("rank").is_some(), "{m}");
    // Its test figures are the model's metrics too (the Models tab's columns).
    for (k, v) in out["winner"]["test"].as_object().unwrap() {
        assert_eq!(m["metrics"][k].as_f64(), v.as_f64(), "{k}: {m}");
    }
    assert_eq!(p["model_outputs"], serde_json::json!([m["model_id"]]));
    let children: Vec<&serde_json::Value> = runs
        .iter()
        .filter(|r| r["parent_run_id"] == parent.as_str())
        .collect();
    assert_eq!(children.len(), 5);
    let best = children
        .iter()
        .find(|c| c["run_id"] == out["best_run_id"])
        .unwrap();
    assert_eq!(best["model_outputs"], serde_json::json!([m["model_id"]]));
    for k in out["winner"]["test"].as_object().unwrap().keys() {
        let points = best["metric_history"][k].as_array().unwrap();
        assert_eq!(
            points.len(),
            1,
            "{k}: the model's copy adds no point to the run"
        );
    }
    for c in children {
        assert_eq!(c["status"], "FINISHED");
        assert_eq!(
            c["metric_history"]["train_loss"].as_array().unwrap().len(),
            3,
            "one point per iteration"
        );
        assert!(c["params"].get("rank").is_some() && c["params"].get("reg").is_some());
        // One dataset per split, each with MLflow's column spec, a profile and its context.
        let sets = c["datasets"].as_array().unwrap();
        let mut contexts: Vec<&str> = sets
            .iter()
            .map(|s| s["context"].as_str().unwrap())
            .collect();
        contexts.sort();
        assert_eq!(contexts, ["test", "training", "validation"]);
        for s in sets {
            let schema: serde_json::Value =
                serde_json::from_str(s["schema"].as_str().unwrap()).unwrap();
            assert!(
                schema["mlflow_colspec"].as_array().unwrap().len() >= 3,
                "{schema}"
            );
            let profile: serde_json::Value =
                serde_json::from_str(s["profile"].as_str().unwrap()).unwrap();
            let rows = profile["num_rows"].as_u64().unwrap();
            let want = match s["context"].as_str().unwrap() {
                "training" => out["sizes"]["train"].as_u64(),
                "validation" => out["sizes"]["validation"].as_u64(),
                _ => out["sizes"]["test"].as_u64(),
            };
            assert_eq!(Some(rows), want, "{s}");
            assert!(
                s["source"].as_str().unwrap().contains("file:///"),
                "absolute: {s}"
            );
        }
    }
    // The filter grammar selects what MLflow's search_runs selects.
    let uri = format!("file://{}", d.join("mlruns").display());
    for filter in [
        "metrics.val_rmse < 1.3",
        "params.rank = '4'",
        "params.rank = '4' and metrics.val_rmse >= 0",
        "tags.`mlflow.runName` LIKE 'als rank=2%'",
        "tags.`mlflow.runName` ILIKE 'ALS RANK=4%'",
        "params.reg != '0.1'",
        "attributes.status = 'FINISHED'",
        "tags.best_run_id IS NOT NULL",
    ] {
        let theirs = py_json(
            &py,
            &[
                script("mlflow_client.py").to_str().unwrap(),
                "search",
                &uri,
                "it-quick",
                filter,
            ],
        );
        let ours = d
            .run(&[
                "runs",
                "list",
                "--experiment",
                "it-quick",
                "--filter",
                filter,
                "--json",
            ])
            .ok()
            .json();
        let mut ids: Vec<String> = ours
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["info"]["run_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        assert_eq!(serde_json::json!(ids), theirs, "filter {filter}");
    }
    // The comparison commands read the same store.
    let best = d
        .run(&[
            "runs",
            "best",
            "--experiment",
            "it-quick",
            "--metric",
            "val_rmse",
        ])
        .ok()
        .also_json(&d)
        .json();
    assert!(best["info"]["run_id"].is_string());
    let ids: Vec<String> = out["child_run_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let cmp = d.run(&["runs", "compare", &ids[0], &ids[1]]).ok();
    assert!(
        cmp.stdout.contains("params.rank") && cmp.stdout.contains("*"),
        "{}",
        cmp.stdout
    );
    // A second run reuses the processed data.
    let again = d.run(&["run", "experiments/it.toml", "--json"]).ok().json();
    assert_eq!(again["reused_data"], true);
}

trait AlsoJson {
    fn also_json(self, d: &Dir) -> Run;
}

impl AlsoJson for Run {
    // `runs best` prints a line; ask again with --json for the structured form.
    fn also_json(self, d: &Dir) -> Run {
        d.run(&[
            "runs",
            "best",
            "--experiment",
            "it-quick",
            "--metric",
            "val_rmse",
            "--json",
        ])
        .ok()
    }
}

#[test]
fn two_processes_logging_into_one_store_corrupt_nothing() {
    let Some(py) = python_or_skip("two_processes_logging_into_one_store_corrupt_nothing") else {
        return;
    };
    let d = prepared();
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_recflow"))
            .current_dir(d.path())
            .args(["-q", "run", "experiments/it.toml"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for c in [a, b] {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let seen = py_json(
        &py,
        &[
            script("check_mlflow_filestore.py").to_str().unwrap(),
            d.join("mlruns").to_str().unwrap(),
        ],
    );
    assert_eq!(seen["migrated_equal"], true);
    let exps: Vec<&serde_json::Value> = seen["filestore"]["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "it-quick")
        .collect();
    assert_eq!(exps.len(), 1, "one experiment for one name");
    assert_eq!(exps[0]["runs"].as_array().unwrap().len(), 12);
}

/// A real MLflow server on loopback, stopped when dropped.
struct Server {
    child: Child,
    uri: String,
    port: u16,
    dir: Option<tempfile::TempDir>,
}

impl Server {
    fn kill(&mut self) {
        // `mlflow server` starts uvicorn and job workers as children: end its whole process
        // group, or they outlive the test run.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server and keeps its store, to start it again later.
    fn kill_keeping_store(mut self) -> (tempfile::TempDir, u16) {
        self.kill();
        (self.dir.take().unwrap(), self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn start_server() -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    start_server_on(tempfile::tempdir().unwrap(), port)
}

/// A server on `port` over the store in `dir` (a store a killed server left, or a new one).
fn start_server_on(dir: tempfile::TempDir, port: u16) -> Server {
    let mlflow = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/mlflow");
    let child = Command::new(mlflow)
        .process_group(0)
        .args(["server", "--backend-store-uri"])
        .arg(format!("sqlite:///{}/mlflow.db", dir.path().display()))
        .arg("--artifacts-destination")
        .arg(dir.path().join("artifacts"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--workers",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mlflow server");
    let uri = format!("http://127.0.0.1:{port}");
    let server = Server {
        child,
        uri,
        port,
        dir: Some(dir),
    };
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(90) {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if buf.contains("200 OK") {
                return server;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("mlflow server did not start within 90 s");
}

/// A loopback proxy to `upstream` that holds every chunk the client sends for `delay`: a
/// slow tracking server. Runs until the test process ends.
fn slow_proxy(upstream: u16, delay: Duration) -> String {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 || {
                        std::thread::sleep(delay);
                        s_out.write_all(&buf[..n]).is_err()
                    } {
                        break;
                    }
                }
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_in, &mut c_out);
                let _ = c_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[test]
fn fit_seconds_count_fitting_only_behind_a_slow_server() {
    // The rule: `fit_seconds` measures fitting; time spent sending to the tracking store is
    // `log_seconds`. Every request to this server takes 150 ms more, so a fit that waited on
    // its per-iteration curves (3 iterations) would take at least 0.45 s; these fits take
    // milliseconds.
    let Some(py) = python_or_skip("fit_seconds_count_fitting_only_behind_a_slow_server") else {
        return;
    };
    let server = start_server();
    let slow = slow_proxy(server.port, Duration::from_millis(150));
    let d = prepared();
    let out = d
        .run(&[
            "run",
            "experiments/it.toml",
            "--tracking-uri",
            &slow,
            "--json",
        ])
        .ok()
        .json();
    let parent = out["parent_run_id"].as_str().unwrap();
    let runs = client_read(&py, &server.uri);
    let runs = runs.as_array().unwrap();
    let p = runs.iter().find(|r| r["run_id"] == parent).unwrap();
    let log_seconds = p["metrics"]["log_seconds"].as_f64().unwrap();
    assert!(log_seconds >= 0.15, "logging took its time: {log_seconds}");
    let fits: Vec<f64> = runs
        .iter()
        .filter(|r| r["run_id"] != parent)
        .map(|r| r["metrics"]["fit_seconds"].as_f64().unwrap())
        .collect();
    assert_eq!(fits.len(), 5, "{runs:?}");
    for f in &fits {
        assert!(
            *f < 0.3,
            "fit_seconds {f} counts waiting on the server: {fits:?}"
        );
    }
}

#[test]
fn rest_server_gets_the_same_runs_as_the_file_store() {
    let Some(py) = python_or_skip("rest_server_gets_the_same_runs_as_the_file_store") else {
        return;
    };
    let server = start_server();
    let d = prepared();
    let out = d
        .run(&[
            "run",
            "experiments/it.toml",
            "--tracking-uri",
            &server.uri,
            "--json",
        ])
        .ok()
        .json();
    let parent = out["parent_run_id"].as_str().unwrap();
    let runs = client_read(&py, &server.uri);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 6);
    let p = runs.iter().find(|r| r["run_id"] == parent).unwrap();
    assert_eq!(p["status"], "FINISHED");
    for (k, v) in out["winner"]["test"].as_object().unwrap() {
        assert_eq!(
            p["metrics"][format!("best.{k}")].as_f64(),
            v.as_f64(),
            "{k}"
        );
    }
    let arts: Vec<&str> = p["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(arts.contains(&"plots/learning_curves_als.png"), "{arts:?}");
    // The winner's LoggedModel, through the server's artifact proxy: MLflow lists it, loads it
    // as a pyfunc model, and it answers as `recommend` does on the local copy.
    let model_id = out["model_id"].as_str().unwrap();
    let user = {
        use std::io::Read;
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(d.join("r.json.gz")).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        first["reviewerID"].as_str().unwrap().to_string()
    };
    let user = user.as_str();
    let want = d
        .run(&[
            "recommend",
            "--model",
            "artifacts/model",
            "--user",
            user,
            "-k",
            "5",
            "--json",
        ])
        .ok()
        .json();
    let seen = py_json(
        &py,
        &[
            script("check_pyfunc.py").to_str().unwrap(),
            &server.uri,
            &serde_json::json!([user]).to_string(),
            "[]",
            &format!("models:/{model_id}"),
        ],
    );
    let listed = seen["logged_models"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["source_run_id"], out["best_run_id"]);
    assert!(
        listed[0]["metrics"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("test_")),
        "{listed:?}"
    );
    let top: Vec<&str> = seen["models"][format!("models:/{model_id}")]["top"][user]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = want["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(top, expected);
    assert_eq!(runs.iter().filter(|r| r["parent"] == parent).count(), 5);
    for c in runs.iter().filter(|r| r["parent"] == parent) {
        assert_eq!(c["history"]["train_loss"], 3);
    }
    // The same spec into a file store: `runs list` shows the same rows for both backends.
    d.run(&["run", "experiments/it.toml"]).ok();
    let cols = "name,status,params.rank,params.reg,metrics.val_rmse,metrics.val_precision_at_10";
    let rows = |extra: &[&str]| {
        let mut args = vec![
            "runs",
            "list",
            "--experiment",
            "it-quick",
            "--columns",
            cols,
            "--csv",
            "--order-by",
            "metrics.val_rmse ASC",
        ];
        args.extend_from_slice(extra);
        let mut lines: Vec<String> = d
            .run(&args)
            .ok()
            .stdout
            .lines()
            .skip(1)
            .map(|l| {
                l.split_once(',')
                    .map(|x| x.1.to_string())
                    .unwrap_or_default()
            })
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(rows(&["--tracking-uri", &server.uri]), rows(&[]));
    // Sync copies the file store's run to the server once.
    let first = d
        .run(&[
            "sync",
            "--to",
            &server.uri,
            "--experiment",
            "it-quick",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(first["copied"].as_array().unwrap().len(), 6);
    assert_eq!(
        first["models"], 1,
        "the winner's model is copied with its run: {first}"
    );
    // The local pointers at the copied runs now name their copies on the server.
    let targets: Vec<String> = first["copied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap().to_string())
        .collect();
    let id = std::fs::read_to_string(d.join("artifacts/metrics/mlflow_run_id.txt")).unwrap();
    assert!(
        targets.iter().any(|t| t == id.trim()),
        "{id} in {targets:?}"
    );
    let meta = d.json("artifacts/model/metadata.json");
    let run = meta["run_id"].as_str().unwrap();
    assert!(targets.iter().any(|t| t == run), "{meta}");
    let second = d
        .run(&[
            "sync",
            "--to",
            &server.uri,
            "--experiment",
            "it-quick",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(second["copied"].as_array().unwrap().len(), 0);
    // Registration in the Model Registry: the `champion` alias moves only to a better model on
    // the same test split, unless forced; each decision is a tag on the version.
    let register = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "experiments/it.toml",
            "--tracking-uri",
            &server.uri,
            "--register",
            "it-model",
            "--json",
        ];
        args.extend_from_slice(extra);
        d.run(&args).ok().json()["registered"].clone()
    };
    let first = register(&[]);
    assert_eq!(first["champion"], true, "{first}");
    // The same spec on the same split scores the same: a tie does not take the alias.
    let tie = register(&[]);
    assert_eq!(tie["champion"], false, "{tie}");
    assert!(
        tie["decision"].as_str().unwrap().contains("does not beat"),
        "{tie}"
    );
    let other_split = register(&["--set", "split.seed=8"]);
    assert_eq!(other_split["champion"], false, "{other_split}");
    assert!(
        other_split["decision"]
            .as_str()
            .unwrap()
            .contains("test split"),
        "{other_split}"
    );
    let forced = register(&["--force"]);
    assert_eq!(forced["champion"], true, "{forced}");
    if let Some(py) = crate::util::python() {
        let out = Command::new(py)
            .args([
                "-c",
                "import sys, mlflow; c = mlflow.MlflowClient(sys.argv[1]); \
                 mlflow.set_tracking_uri(sys.argv[1]); \
                 v = c.get_model_version_by_alias('it-model', 'champion'); \
                 t = c.get_model_version('it-model', sys.argv[2]).tags; \
                 i = mlflow.models.get_model_info(f'models:/it-model/{v.version}'); \
                 s = [c.name for c in i.signature.inputs.inputs] if i.signature else []; \
                 print(v.version, '|', t.get('recflow.champion_decision', ''), '|', \
                       c.get_model_version('it-model', v.version).source, '|', ','.join(s))",
                &server.uri,
                tie["version"].as_str().unwrap(),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let parts: Vec<&str> = text.trim().split(" | ").collect();
        assert_eq!(
            parts.len(),
            4,
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(parts[0], forced["version"].as_str().unwrap(), "{text}");
        assert!(parts[1].contains("does not beat"), "{text}");
        // A version is the LoggedModel, with its signature (the registry page's inputs).
        assert!(parts[2].starts_with("models:/m-"), "{text}");
        assert_eq!(parts[3], "user_id,k,item_id", "{text}");
    }
}

#[test]
fn sigterm_ends_open_runs_as_killed() {
    let d = Dir::new();
    d.generate(3000, 1500, 60000, 9);
    d.write(
        "experiments/slow.toml",
        SPEC.replace("rank = [2, 4]", "rank = [16, 32, 48, 64]")
            .replace("reg = [0.1, 0.5]", "reg = [0.05, 0.1, 0.2, 0.4]")
            .replace("max_iter = 3", "max_iter = 20"),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_recflow"))
        .current_dir(d.path())
        .args(["-q", "run", "experiments/slow.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a run is open, then ask the process to stop.
    let t0 = Instant::now();
    let running = |root: &Path| -> Vec<PathBuf> {
        let mut out = Vec::new();
        for exp in std::fs::read_dir(root).into_iter().flatten().flatten() {
            for run in std::fs::read_dir(exp.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let meta = run.path().join("meta.yaml");
                if std::fs::read_to_string(&meta).is_ok_and(|t| t.contains("status: 1")) {
                    out.push(meta);
                }
            }
        }
        out
    };
    let open = loop {
        let open = running(&d.join("mlruns"));
        if open.len() >= 2 || t0.elapsed() > Duration::from_secs(60) {
            break open;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!open.is_empty(), "no run was opened");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "SIGTERM exits 128 + 15");
    assert!(
        running(&d.join("mlruns")).is_empty(),
        "nothing is left RUNNING"
    );
    for meta in open {
        let text = std::fs::read_to_string(&meta).unwrap();
        assert!(text.contains("status: 5"), "KILLED: {text}");
    }
}

#[test]
fn a_server_that_dies_mid_run_leaves_the_runs_spooled_exit_1_and_the_sync_command() {
    let Some(py) = python_or_skip("a_server_that_dies_mid_run_leaves_the_runs_spooled") else {
        return;
    };
    let server = start_server();
    let d = Dir::new();
    d.generate(3000, 1500, 60000, 9);
    d.write(
        "experiments/slow.toml",
        SPEC.replace("rank = [2, 4]", "rank = [16, 32, 48]")
            .replace("max_iter = 3", "max_iter = 15"),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_recflow"))
        .current_dir(d.path())
        .args([
            "run",
            "experiments/slow.toml",
            "--tracking-uri",
            &server.uri,
        ])
        .env_remove("MLFLOW_TRACKING_URI")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let the parent and a child open on the server, then take the server away.
    std::thread::sleep(Duration::from_secs(4));
    let uri = server.uri.clone();
    let (store, port) = server.kill_keeping_store();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "spooled results exit 1\n{stderr}"
    );
    assert!(stderr.contains("recflow sync --from"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("logged to http"), "{stdout}");
    // The local copy is complete: every run ended, none left RUNNING.
    let mut metas = 0;
    for exp in std::fs::read_dir(d.join("mlruns")).unwrap().flatten() {
        for run in std::fs::read_dir(exp.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(t) = std::fs::read_to_string(run.path().join("meta.yaml")) {
                if t.contains("run_id") {
                    metas += 1;
                    assert!(t.contains("status: 3"), "FINISHED: {t}");
                }
            }
        }
    }
    assert!(
        metas >= 2,
        "the parent and its children are in ./mlruns ({metas})"
    );
    // The winner's model was logged after the server went away: it is in the local copy, whole,
    // and a sync takes it along with its run.
    let models = |root: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(root)
            .unwrap()
            .flatten()
            .flat_map(|e| {
                std::fs::read_dir(e.path().join("models"))
                    .into_iter()
                    .flatten()
            })
            .flatten()
            .map(|m| m.path())
            .collect()
    };
    let local = models(&d.join("mlruns"));
    assert_eq!(local.len(), 1, "{local:?}");
    assert!(local[0].join("artifacts/data/metadata.json").is_file());
    assert!(local[0].join("artifacts/MLmodel").is_file());
    // The server comes back over the same store, holding the partial runs; a sync leaves it
    // one complete experiment run with every child, the partial ones marked superseded.
    let server = start_server_on(store, port);
    assert_eq!(server.uri, uri);
    let synced = d
        .run(&["sync", "--from", "file:./mlruns", "--to", &uri, "--json"])
        .ok()
        .json();
    assert_eq!(synced["models"], 1, "{synced}");
    let seen = py_json(
        &py,
        &[
            "-c",
            "import json, sys, mlflow\n\
             mlflow.set_tracking_uri(sys.argv[1])\n\
             c = mlflow.MlflowClient()\n\
             e = c.get_experiment_by_name('it-quick')\n\
             runs = c.search_runs([e.experiment_id], max_results=1000)\n\
             out = []\n\
             for r in runs:\n\
             \x20   arts = [a.path for a in c.list_artifacts(r.info.run_id)]\n\
             \x20   out.append({'id': r.info.run_id, 'status': r.info.status, 'tags': r.data.tags, 'arts': arts})\n\
             print(json.dumps(out))",
            &uri,
        ],
    );
    let runs = seen.as_array().unwrap();
    let live: Vec<&serde_json::Value> = runs
        .iter()
        .filter(|r| r["tags"].get("recflow.superseded_by").is_none())
        .collect();
    let parents: Vec<&&serde_json::Value> = live
        .iter()
        .filter(|r| r["tags"].get("mlflow.parentRunId").is_none())
        .collect();
    assert_eq!(parents.len(), 1, "one parent: {seen}");
    let parent = parents[0];
    let pid = parent["id"].as_str().unwrap();
    assert_eq!(parent["status"], "FINISHED", "{parent}");
    assert!(
        parent["arts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "spec.toml"),
        "the spec survives spooling: {parent}"
    );
    let children: Vec<&&serde_json::Value> = live
        .iter()
        .filter(|r| r["tags"]["mlflow.parentRunId"] == pid)
        .collect();
    // 3 ranks x 2 regs, and the final refit.
    assert_eq!(
        children.len(),
        7,
        "every child under the one parent: {seen}"
    );
    assert_eq!(live.len(), 8, "no live run outside the tree: {seen}");
    assert!(children.iter().all(|c| c["status"] == "FINISHED"), "{seen}");
    let best = parent["tags"]["best_run_id"].as_str().unwrap();
    assert!(
        children.iter().any(|c| c["id"] == best),
        "best_run_id names a child on the server: {seen}"
    );
    for r in runs.iter().filter(|r| !live.contains(r)) {
        assert_ne!(r["status"], "RUNNING", "a superseded run is ended: {r}");
    }
    let id_file = std::fs::read_to_string(d.join("artifacts/metrics/mlflow_run_id.txt")).unwrap();
    assert_eq!(
        id_file.trim(),
        pid,
        "the local pointer names the synced parent"
    );

    // Another store takes the same local copy too, models with new identities.
    let synced = d
        .run(&[
            "sync",
            "--from",
            "file:./mlruns",
            "--to",
            "file:./copy",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(synced["models"], 1, "{synced}");
    let copied = models(&d.join("copy"));
    assert_eq!(copied.len(), 1, "{copied:?}");
    let mlmodel = std::fs::read_to_string(copied[0].join("artifacts/MLmodel")).unwrap();
    let id = copied[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(
        mlmodel.contains(&format!("model_id: {id}")),
        "a new identity: {mlmodel}"
    );
}

#[test]
fn a_failure_after_training_ends_the_parent_failed_and_touches_nothing_else() {
    let d = prepared();
    d.write("mydocs/thesis.tex", "a");
    std::fs::create_dir_all(d.join("mydocs/photos")).unwrap();
    let run = d
        .run(&[
            "-q",
            "run",
            "experiments/it.toml",
            "--set",
            "output.model_dir=\"mydocs\"",
        ])
        .fails_with(1);
    assert!(
        run.stderr.contains("not a recflow model folder"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(d.join("mydocs/thesis.tex")).unwrap(),
        "a"
    );
    assert!(d.join("mydocs/photos").is_dir());
    let mut statuses = Vec::new();
    for exp in std::fs::read_dir(d.join("mlruns")).unwrap().flatten() {
        for r in std::fs::read_dir(exp.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(t) = std::fs::read_to_string(r.path().join("meta.yaml")) {
                if let Some(l) = t.lines().find(|l| l.starts_with("status:")) {
                    statuses.push(l.to_string());
                }
            }
        }
    }
    assert!(
        !statuses.iter().any(|s| s == "status: 1"),
        "none RUNNING: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| *s == "status: 4").count(),
        1,
        "the parent is FAILED: {statuses:?}"
    );
}

/// Rule: `sync` from a file store that is not there is an error naming it, not "copied 0".
#[test]
fn sync_from_a_missing_file_store_is_an_error() {
    let d = Dir::new();
    let out = d.run(&["sync", "--from", "file:./nowhere", "--to", "file:./target"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("no file store") && out.stderr.contains("nowhere"),
        "{}",
        out.stderr
    );
    assert!(
        !d.join("nowhere").exists(),
        "nothing is created at the source"
    );
}

/// Rule: every child run carries the parent's context (OS user, source name and type, version,
/// the experiment's tags), a description saying what it is and system metrics (unless turned
/// off); none carries the parent's identity (its data fingerprint, which `--resume` looks
/// parents up by).
#[test]
fn child_runs_carry_the_parents_context_and_a_description() {
    let d = prepared();
    let out = d
        .run_env(
            &["run", "experiments/it.toml", "--json"],
            &[("USER", "tester")],
        )
        .ok()
        .json();
    let parent = out["parent_run_id"].as_str().unwrap();
    let show = |id: &str| d.run(&["runs", "show", id, "--json"]).ok().json()["run"].clone();
    let p = show(parent);
    for id in out["child_run_ids"].as_array().unwrap() {
        let c = show(id.as_str().unwrap());
        let tags = &c["tags"];
        for key in [
            "mlflow.user",
            "mlflow.source.name",
            "mlflow.source.type",
            "recflow.version",
            "suite",
        ] {
            assert_eq!(
                tags[key], p["tags"][key],
                "{key} on {}",
                c["info"]["run_name"]
            );
        }
        assert_eq!(tags["mlflow.user"], "tester");
        assert!(tags.get("recflow.data_fingerprint").is_none());
        let note = tags["mlflow.note.content"].as_str().unwrap();
        let entry = tags["recflow.entry"].as_str().unwrap();
        assert!(note.contains(entry) && note.contains(parent), "{note}");
        let role = tags["recflow.role"].as_str().unwrap();
        assert!(
            note.contains(if role == "final" {
                "test split"
            } else {
                "validation"
            }),
            "{note}"
        );
        // MLflow's system metrics, sampled at least once per fit, and the peak memory.
        for key in [
            "system/cpu_utilization_percentage",
            "system/system_memory_usage_megabytes",
            "peak_rss_megabytes",
        ] {
            assert!(c["metrics"].get(key).is_some(), "{key}: {}", c["metrics"]);
        }
    }
    let quiet = d
        .run(&[
            "run",
            "experiments/it.toml",
            "--no-system-metrics",
            "--json",
        ])
        .ok()
        .json();
    let c = show(quiet["child_run_ids"][0].as_str().unwrap());
    assert!(
        c["metrics"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("system/")),
        "{}",
        c["metrics"]
    );
}
