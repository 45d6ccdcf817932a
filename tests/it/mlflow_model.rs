//! The MLflow 3 LoggedModel recflow logs: MLflow's own client lists it, loads it as a
//! `python_function` model (by `models:/<id>` and `runs:/<run>/model`) and that model answers
//! as `recflow recommend` does, for every family recflow can save.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{python_or_skip, Dir};

const SPEC: &str = r#"
[experiment]
name = "pyfunc"

[data]
input = "r.json.gz"
min_interactions = 5

[split]
test_fraction = 0.2
validation_fraction = 0.1
seed = 3

[eval]
k = 10
select = "ndcg_at_10"

[[models]]
name = "explicit"
family = "als"
rank = 4
max_iter = 3

[[models]]
name = "implicit"
family = "als"
implicit = true
rank = 4
max_iter = 3

[[models]]
name = "ease"
family = "ease"
lambda = 50.0

[[models]]
name = "knn"
family = "item_knn"
neighbors = 10

[[models]]
name = "biases"
family = "biases"

[[models]]
name = "mean"
family = "global_mean"

[[models]]
name = "popularity"
family = "popularity"

[[models]]
name = "random"
family = "random"
seed = 9
"#;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

/// The first distinct values of `field` in the generated reviews.
fn ids(d: &Dir, field: &str, n: usize) -> Vec<String> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(d.join("r.json.gz")).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v[field].as_str().unwrap().to_string();
        if !out.contains(&id) {
            out.push(id);
        }
        if out.len() == n {
            break;
        }
    }
    out
}

/// `recflow recommend` for one user: (strategy, [(item, score)]).
fn recommend(
    d: &Dir,
    model: &Path,
    user: &str,
    k: usize,
    seen: bool,
) -> (String, Vec<(String, f64)>) {
    let k = k.to_string();
    let mut args = vec![
        "recommend",
        "--model",
        model.to_str().unwrap(),
        "--user",
        user,
        "-k",
        &k,
    ];
    if seen {
        args.push("--include-seen");
    }
    args.push("--json");
    let v = d.run(&args).ok().json();
    let items = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["item_id"].as_str().unwrap().to_string(),
                i["score"].as_f64().unwrap(),
            )
        })
        .collect();
    (v["strategy"].as_str().unwrap().to_string(), items)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-4 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn every_family_logs_a_model_that_mlflow_pyfunc_loads_and_that_answers_as_recommend() {
    let Some(py) = python_or_skip(
        "every_family_logs_a_model_that_mlflow_pyfunc_loads_and_that_answers_as_recommend",
    ) else {
        return;
    };
    let d = Dir::new();
    d.generate(300, 120, 4000, 5);
    d.write("s.toml", SPEC);
    let out = d
        .run(&["run", "s.toml", "--json", "--log-models", "all"])
        .ok()
        .json();
    let best = out["best_run_id"].as_str().unwrap().to_string();
    let winner_model = out["model_id"].as_str().unwrap().to_string();
    assert_eq!(out["model_uri"], format!("models:/{winner_model}"));
    let children: Vec<String> = out["child_run_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();

    let mut users = ids(&d, "reviewerID", 6);
    users.push("nobody-<script>".into());
    let items = ids(&d, "asin", 4);
    // Every logged model, found the way MLflow's client finds them.
    let listing = Command::new(&py)
        .current_dir(d.path())
        .args([
            script("check_pyfunc.py").to_str().unwrap(),
            "file:./mlruns",
            &serde_json::to_string(&users).unwrap(),
            &serde_json::to_string(&items).unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let listing: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
    let logged = listing["logged_models"].as_array().unwrap().clone();
    assert_eq!(logged.len(), 8, "one model per entry with --log-models all");
    let mut uris: Vec<String> = logged
        .iter()
        .map(|m| format!("models:/{}", m["model_id"].as_str().unwrap()))
        .collect();
    uris.push(format!("runs:/{best}/model"));
    let mut args = vec![
        script("check_pyfunc.py").to_str().unwrap().to_string(),
        "file:./mlruns".into(),
        serde_json::to_string(&users).unwrap(),
        serde_json::to_string(&items).unwrap(),
    ];
    args.extend(uris.iter().cloned());
    let run = Command::new(&py)
        .current_dir(d.path())
        .args(&args)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();

    let mut families = BTreeMap::new();
    for m in &logged {
        assert_eq!(m["name"], "model");
        assert!(m["status"].as_str().unwrap().contains("READY"), "{m}");
        let source = m["source_run_id"].as_str().unwrap();
        assert!(
            children.iter().any(|c| c == source),
            "made by a final child: {m}"
        );
        let family = m["tags"]["recflow.family"].as_str().unwrap().to_string();
        assert!(m["tags"]["mlflow.source.name"].is_string(), "{m}");
        let location = m["artifact_location"].as_str().unwrap();
        let dir = PathBuf::from(location.strip_prefix("file://").unwrap()).join("data");
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("metadata.json")).unwrap())
                .unwrap();
        let predicts = meta["predicts_ratings"].as_bool().unwrap();
        let uri = format!("models:/{}", m["model_id"].as_str().unwrap());
        let got = &seen["models"][&uri];
        let sig = got["signature"]["inputs"].to_string();
        assert!(sig.contains("user_id") && sig.contains("item_id"), "{sig}");
        assert!(got["example_answer_rows"].as_u64().unwrap() > 0, "{got}");

        let mut known = 0;
        for user in &users {
            let (strategy, want) = recommend(&d, &dir, user, 5, false);
            let rows = got["top"][user].as_array().unwrap();
            assert_eq!(rows.len(), want.len(), "{family} {user}");
            for (n, (row, (item, score))) in rows.iter().zip(&want).enumerate() {
                assert_eq!(row[2], strategy.as_str(), "{family} {user}");
                let s = row[1].as_f64().unwrap();
                assert!(close(s, *score), "{family} {user} #{n}: {s} vs {score}");
                // Ids agree unless two scores are within rounding of each other.
                let tie = want
                    .iter()
                    .filter(|(i, _)| i != item)
                    .any(|(_, o)| close(*o, *score));
                assert!(
                    tie || row[0] == item.as_str(),
                    "{family} {user} #{n}: {row} vs {item}"
                );
            }
            if strategy != "popular" {
                known += 1;
            }
        }
        assert!(known > 0, "{family}: some test users are known");
        let first: Vec<&str> = got["top"][&users[0]].as_array().unwrap()[..3]
            .iter()
            .map(|r| r[0].as_str().unwrap())
            .collect();
        assert_eq!(
            got["first_k3"],
            serde_json::json!(first),
            "{family}: a `k` column"
        );

        if predicts {
            let pairs = got["pairs"].as_array().expect("predictions");
            for (u, user) in users.iter().enumerate() {
                let (strategy, all) = recommend(&d, &dir, user, 1000, true);
                for (i, item) in items.iter().enumerate() {
                    let p = pairs[u * items.len() + i].as_f64();
                    match all.iter().find(|(x, _)| x == item) {
                        Some((_, s)) if strategy != "popular" => {
                            let p = p.unwrap_or_else(|| panic!("{family} {user} {item}: none"));
                            assert!(close(p, *s), "{family} {user} {item}: {p} vs {s}");
                        }
                        _ if user.starts_with("nobody") => assert!(p.is_none()),
                        _ => {}
                    }
                }
            }
        } else {
            let e = got["pairs"]["error"].as_str().expect("an error for pairs");
            assert!(e.contains("does not predict ratings"), "{family}: {e}");
        }
        families.insert(family, m["model_id"].as_str().unwrap().to_string());
    }
    for f in [
        "als",
        "ease",
        "item_knn",
        "biases",
        "global_mean",
        "popularity",
        "random",
    ] {
        assert!(families.contains_key(f), "{f} in {families:?}");
    }
    // `runs:/<winner's final run>/model` is the winner's model.
    assert_eq!(
        seen["models"][format!("runs:/{best}/model")]["top"],
        seen["models"][format!("models:/{winner_model}")]["top"]
    );
}

/// `mlflow models serve`, stopped (with its uvicorn workers) when dropped.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn mlflow_models_serve_answers_top_k_over_http_as_recommend_does() {
    use std::os::unix::process::CommandExt;
    let Some(py) = python_or_skip("mlflow_models_serve_answers_top_k_over_http_as_recommend_does")
    else {
        return;
    };
    let d = Dir::new();
    d.generate(300, 120, 4000, 5);
    d.write(
        "s.toml",
        SPEC.split("[[models]]\nname = \"implicit\"")
            .next()
            .unwrap(),
    );
    let out = d.run(&["run", "s.toml", "--json"]).ok().json();
    let model_id = out["model_id"].as_str().unwrap();
    let user = ids(&d, "reviewerID", 1).remove(0);
    let (strategy, want) = recommend(&d, &d.join("artifacts/model"), &user, 3, false);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin = py.parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new(bin.join("mlflow"))
        .process_group(0)
        .current_dir(d.path())
        .env("PATH", path)
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .env("MLFLOW_TRACKING_URI", "file:./mlruns")
        .args(["models", "serve", "-m", &format!("models:/{model_id}")])
        .args(["--env-manager", "local", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mlflow models serve");
    let _serving = Serving(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::new();
    let t0 = std::time::Instant::now();
    while client.get(format!("{base}/ping")).send().is_err() {
        assert!(
            t0.elapsed().as_secs() < 90,
            "mlflow models serve did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let body = serde_json::json!({
        "dataframe_split": { "columns": ["user_id"], "data": [[user]] },
        "params": { "k": 3 },
    });
    let answer: serde_json::Value = client
        .post(format!("{base}/invocations"))
        .json(&body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let rows = answer["predictions"].as_array().unwrap();
    assert_eq!(rows.len(), want.len(), "{answer}");
    for (row, (item, score)) in rows.iter().zip(&want) {
        assert_eq!(row["item_id"], item.as_str(), "{answer}");
        assert!(close(row["score"].as_f64().unwrap(), *score), "{answer}");
        assert_eq!(row["strategy"], strategy.as_str());
    }
}

#[test]
fn train_als_with_a_tracking_uri_logs_one_run_with_its_model_and_an_unreachable_server_stops_it_first(
) {
    let d = Dir::new();
    d.generate(300, 120, 4000, 5);
    d.run(&["etl", "--input", "r.json.gz", "--min-interactions", "5"])
        .ok();
    // No server on the discard port: refused before any training, nothing written.
    let refused = d
        .run(&[
            "train-als",
            "--tracking-uri",
            "http://127.0.0.1:9",
            "--rank",
            "4",
        ])
        .fails_with(1);
    assert!(refused.stderr.contains("127.0.0.1:9"), "{}", refused.stderr);
    assert!(!d.join("artifacts/model").exists());

    let out = d
        .run(&[
            "train-als",
            "--rank",
            "4",
            "--max-iter",
            "3",
            "--tracking-uri",
            "file:./mlruns",
            "--experiment",
            "adhoc",
            "--json",
        ])
        .ok()
        .json();
    let run_id = out["run_id"].as_str().unwrap();
    let model_id = out["model_id"].as_str().unwrap();
    let runs = d
        .run(&[
            "runs",
            "list",
            "--experiment",
            "adhoc",
            "--json",
            "--tracking-uri",
            "file:./mlruns",
        ])
        .ok()
        .json();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "one run, no children: {runs:?}");
    let shown = d
        .run(&[
            "runs",
            "show",
            run_id,
            "--json",
            "--tracking-uri",
            "file:./mlruns",
        ])
        .ok()
        .json();
    assert_eq!(shown["run"]["params"]["rank"], "4", "{shown}");
    assert!(
        shown["run"]["metrics"]["test_rmse"]["value"].is_number(),
        "{shown}"
    );
    assert_eq!(
        shown["run"]["metrics"]["train_loss"]["step"], 3,
        "a curve: {shown}"
    );
    assert_eq!(shown["run"]["info"]["status"], "FINISHED");
    assert_eq!(shown["children"], serde_json::json!([]));
    let Some(py) = python_or_skip(
        "train_als_with_a_tracking_uri_logs_one_run_with_its_model_and_an_unreachable_server_stops_it_first",
    ) else {
        return;
    };
    let user = ids(&d, "reviewerID", 1).remove(0);
    let (_, want) = recommend(&d, &d.join("artifacts/model"), &user, 5, false);
    let seen = Command::new(&py)
        .current_dir(d.path())
        .args([
            script("check_pyfunc.py").to_str().unwrap(),
            "file:./mlruns",
            &serde_json::json!([user]).to_string(),
            "[]",
            &format!("runs:/{run_id}/model"),
        ])
        .output()
        .unwrap();
    assert!(
        seen.status.success(),
        "{}",
        String::from_utf8_lossy(&seen.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&seen.stdout).unwrap();
    let listed = seen["logged_models"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["model_id"], model_id);
    assert_eq!(listed[0]["source_run_id"], run_id);
    let top: Vec<&str> = seen["models"][format!("runs:/{run_id}/model")]["top"][&user]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    let want: Vec<&str> = want.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(top, want);
}

#[test]
fn train_with_a_tracking_uri_logs_the_run_tree_of_run() {
    // DECISIONS.md: the parent is one `recflow run` (or `recflow train`), a child per
    // configuration, each entry's final child with the model; `train-als` alone logs one run.
    let d = Dir::new();
    d.generate(300, 120, 4000, 5);
    d.run(&["etl", "--input", "r.json.gz", "--min-interactions", "5"])
        .ok();
    let out = d
        .run(&[
            "train",
            "--rank",
            "4,8",
            "--reg",
            "0.1",
            "--max-iter",
            "3",
            "--tracking-uri",
            "file:./mlruns",
            "--experiment",
            "adhoc-tree",
            "--json",
        ])
        .ok()
        .json();
    let parent = out["parent_run_id"].as_str().unwrap();
    let best = out["best_run_id"].as_str().unwrap();
    assert_eq!(out["child_run_ids"].as_array().unwrap().len(), 3, "{out}");
    assert!(out["model_id"].as_str().unwrap().starts_with("m-"), "{out}");
    assert!(d.join("artifacts/model/metadata.json").exists());
    let shown = d
        .run(&[
            "runs",
            "show",
            parent,
            "--json",
            "--tracking-uri",
            "file:./mlruns",
        ])
        .ok()
        .json();
    let tags = &shown["run"]["tags"];
    assert_eq!(tags["mlflow.source.name"], "recflow train", "{shown}");
    assert_eq!(tags["best_run_id"], best, "{shown}");
    assert!(tags.get("recflow.spec").is_none(), "no spec file: {shown}");
    assert!(
        shown["run"]["metrics"]["best.test_rmse"]["value"].is_number(),
        "{shown}"
    );
    assert_eq!(shown["run"]["params"]["data.dir"], "data/processed");
    assert_eq!(shown["children"].as_array().unwrap().len(), 3, "{shown}");
    let child = d
        .run(&[
            "runs",
            "show",
            best,
            "--json",
            "--tracking-uri",
            "file:./mlruns",
        ])
        .ok()
        .json();
    assert_eq!(child["run"]["tags"]["recflow.role"], "final", "{child}");
    assert_eq!(child["run"]["tags"]["mlflow.parentRunId"], parent);
    assert_eq!(child["run"]["params"]["rank"], "8", "{child}");
}

#[test]
fn a_third_searched_axis_gets_one_heatmap_per_value() {
    let d = Dir::new();
    d.generate(300, 120, 4000, 5);
    d.write(
        "s.toml",
        r#"
[experiment]
name = "heat"
[data]
input = "r.json.gz"
min_interactions = 5
[split]
validation_fraction = 0.1
[eval]
select = "ndcg_at_10"
[[models]]
name = "imp"
family = "als"
implicit = true
max_iter = 2
[models.grid]
rank = [2, 4]
reg = [0.1, 0.5]
alpha = [1.0, 10.0]
"#,
    );
    let out = d.run(&["run", "s.toml", "--json"]).ok().json();
    let parent = out["parent_run_id"].as_str().unwrap();
    let plots = std::fs::read_dir(d.join("mlruns"))
        .unwrap()
        .map(|e| e.unwrap().path().join(parent).join("artifacts/plots"))
        .find(|p| p.is_dir())
        .expect("the parent's plots");
    for alpha in ["1.0", "10.0"] {
        let name = format!("grid_imp_val_ndcg_at_10_alpha_{alpha}.png");
        assert!(plots.join(&name).is_file(), "{name} in {}", plots.display());
    }
}
