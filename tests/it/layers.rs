//! The layer between the user and the core: settings resolved once and checked before any work,
//! one output path, one recommending rule. Each test names the defect it guards against.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::Dir;

/// Generated reviews, processed into `proc/` (not the default folder).
fn processed_elsewhere() -> Dir {
    let d = Dir::new();
    d.generate(300, 120, 4000, 11);
    d.run(&["etl", "--input", "r.json.gz", "--output", "proc"])
        .ok();
    d
}

#[test]
fn eval_and_eda_use_the_models_data_and_never_download() {
    let d = processed_elsewhere();
    d.run(&[
        "train-als",
        "--data",
        "proc",
        "--rank",
        "4",
        "--maxiter",
        "2",
    ])
    .ok();
    // No data/processed here, and RAW_REVIEWS_URL points nowhere reachable: any download
    // attempt would fail the command.
    let env = [("RAW_REVIEWS_URL", "http://127.0.0.1:9/none.json.gz")];
    let run = d.run_env(&["eval", "--model", "artifacts/model", "--json"], &env);
    let run = run.ok();
    assert!(run.json()["metrics"]["test_rmse"].is_number());
    assert!(!run.stderr.contains("download"), "{}", run.stderr);
    let run = d.run_env(&["eda", "--out", "eda"], &env).ok();
    assert!(d.join("eda/report.html").exists(), "{}", run.stderr);
    assert!(!d.join("data/processed").exists());
}

#[test]
fn hyper_parameters_are_checked_before_the_etl_or_a_download() {
    let d = Dir::new();
    let run = d
        .run_env(
            &["train-als", "--rank", "0"],
            &[("RAW_REVIEWS_URL", "http://127.0.0.1:9/none.json.gz")],
        )
        .fails_with(1);
    assert!(run.stderr.contains("`rank` is 0"), "{}", run.stderr);
    assert!(!run.stderr.contains("ETL") && !run.stderr.contains("download"));
    assert!(!d.join("data").exists(), "no work was done");
}

#[test]
fn training_without_data_says_what_to_do_instead_of_downloading() {
    let d = Dir::new();
    let run = d.run(&["train-als"]).fails_with(1);
    assert!(run.stderr.contains("no processed data"), "{}", run.stderr);
    assert!(run.stderr.contains("recflow etl"), "{}", run.stderr);
}

const SPEC: &str = r#"
[experiment]
name = "layers"

[data]
input = "r.json.gz"

[[models]]
name = "als"
family = "als"
max_iter = 2
[models.grid]
rank = [2, 4]

[eval]
k = 10
"#;

#[test]
fn every_spec_value_is_checked_before_any_run_is_created() {
    let d = processed_elsewhere();
    let cases: &[(&str, &str, &str)] = &[
        (
            "[eval]\nk = 10\n",
            "[eval]\nk = 10\nselect = \"ndcg@10\"\n",
            "did you mean `ndcg_at_10`?",
        ),
        (
            "[eval]\nk = 10\n",
            "[eval]\nk = 10\nselect = \"ndcg_at_20\"\n",
            "is cut at 20 but the experiment evaluates top-10",
        ),
        (
            "[eval]\nk = 10\n",
            "[eval]\nk = 10\nmetrics = [\"../../x\"]\n",
            "unknown metric `../../x`",
        ),
        (
            "name = \"layers\"\n",
            "name = \"layers\"\ntags = { \"bad key!\" = \"x\" }\n",
            "bad key!",
        ),
        (
            "name = \"layers\"\n",
            "name = \"layers\"\ntags = { \"mlflow.user\" = \"x\" }\n",
            "reserved namespace",
        ),
        (
            "max_iter = 2\n",
            "max_iter = 99999999999999\n",
            "`max_iter` is 99999999999999",
        ),
        (
            "family = \"als\"\n",
            "family = \"alss\"\n",
            "did you mean `als`?",
        ),
        (
            "rank = [2, 4]\n",
            "rnk = [2, 4]\n",
            "has no parameter `rnk`",
        ),
    ];
    for (from, to, msg) in cases {
        d.write("s.toml", SPEC.replace(from, to));
        let run = d.run(&["run", "s.toml"]).fails_with(1);
        assert!(run.stderr.contains(msg), "{to}: {}", run.stderr);
        assert!(
            run.stderr.contains("s.toml:"),
            "the line is named: {}",
            run.stderr
        );
        assert!(!d.join("mlruns").exists(), "{to}: no run was created");
    }
    // Selecting on RMSE when no entry predicts ratings is refused, and the hint does not offer
    // `rmse` as valid.
    d.write(
        "s.toml",
        SPEC.replace("max_iter = 2\n", "max_iter = 2\nimplicit = true\n")
            .replace("[eval]\nk = 10\n", "[eval]\nk = 10\nselect = \"rmse\"\n"),
    );
    let run = d.run(&["run", "s.toml"]).fails_with(1);
    assert!(run.stderr.contains("no model entry"), "{}", run.stderr);
    assert!(!d.join("mlruns").exists());
    // A bad registry name is refused before the first run.
    d.write("s.toml", SPEC);
    let run = d
        .run(&[
            "run",
            "s.toml",
            "--tracking-uri",
            "http://127.0.0.1:9",
            "--register",
            "a/b",
        ])
        .fails_with(1);
    assert!(run.stderr.contains("`--register a/b`"), "{}", run.stderr);
}

#[test]
fn set_errors_are_blamed_on_the_set_and_a_scalar_means_a_list() {
    let d = processed_elsewhere();
    d.write("s.toml", SPEC);
    let run = d
        .run(&["run", "s.toml", "--set", "models.als.grid.rank=0"])
        .fails_with(1);
    assert!(
        run.stderr.contains("`--set models.als.grid.rank=0`"),
        "{}",
        run.stderr
    );
    let run = d
        .run(&["run", "s.toml", "--set", "eval.selct=rmse"])
        .fails_with(1);
    assert!(
        run.stderr.contains("`--set eval.selct=rmse`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `select`?"),
        "{}",
        run.stderr
    );
    let run = d
        .run(&[
            "run",
            "s.toml",
            "--set",
            "models.als.grid.rank=3",
            "--show-settings",
        ])
        .ok();
    let v = run.json();
    assert_eq!(
        v["experiment"]["pipeline"]["entries"][0]["search"]["axes"]["rank"],
        serde_json::json!([3])
    );
}

#[test]
fn a_closed_pipe_ends_a_printing_command_quietly() {
    let d = Dir::new();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_recflow"))
        .current_dir(d.path())
        .args(["config"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("internal error") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn eval_takes_a_test_file_like_train() {
    let d = processed_elsewhere();
    // A test file with original ids: a few of the processed ratings, and an unknown pair.
    let ds = recflow::data::store::load_dataset(&d.join("proc")).unwrap();
    let mut csv = String::from("user,item,rating\n");
    for k in 0..50 {
        let (u, i, r) = (
            ds.interactions.user[k],
            ds.interactions.item[k],
            ds.interactions.rating[k],
        );
        csv.push_str(&format!(
            "{},{},{r}\n",
            ds.user_ids[u as usize], ds.item_ids[i as usize]
        ));
    }
    csv.push_str("somebody-new,some-item,4\n");
    d.write("test.csv", csv);
    d.run(&[
        "train-als",
        "--data",
        "proc",
        "--rank",
        "4",
        "--maxiter",
        "2",
    ])
    .ok();
    let v = d
        .run(&[
            "eval",
            "--model",
            "artifacts/model",
            "--test-file",
            "test.csv",
            "--json",
        ])
        .ok()
        .json();
    assert!(v["metrics"]["test_rmse"].is_number(), "{v}");
    assert!(v["counts"]["pairs_cold"].as_u64().unwrap() >= 1, "{v}");
}

/// A `recflow serve` on a free port, stopped when dropped.
struct Server {
    child: std::process::Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(port: u16, path: &str) -> serde_json::Value {
    use std::io::Write;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn recommend_and_serve_give_a_cold_user_the_same_list_and_figures() {
    let d = processed_elsewhere();
    d.run(&[
        "train-als",
        "--data",
        "proc",
        "--rank",
        "4",
        "--maxiter",
        "2",
    ])
    .ok();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server {
        child: Command::new(env!("CARGO_BIN_EXE_recflow"))
            .current_dir(d.path())
            .args(["-q", "serve", "--port", &port.to_string(), "--threads", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        port,
    };
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let served = get(server.port, "/v1/users/nobody-at-all/recommendations?k=4");
    let cli = d
        .run(&["recommend", "--user", "nobody-at-all", "-k", "4", "--json"])
        .ok()
        .json();
    assert_eq!(served["strategy"], "popular");
    assert_eq!(cli["strategy"], "popular");
    let ids = |v: &serde_json::Value| -> Vec<(String, u64, f64)> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["item_id"].as_str().unwrap().to_string(),
                    i["count"].as_u64().unwrap(),
                    i["score"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (a, b) = (ids(&served), ids(&cli));
    assert_eq!(a.len(), 4);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.0, x.1), (&y.0, y.1));
        assert!((x.2 - y.2).abs() < 1e-4, "damped mean {} vs {}", x.2, y.2);
    }
    // A known user is answered by the model, the same way.
    let ds = recflow::data::store::load_dataset(&d.join("proc")).unwrap();
    let user = &ds.user_ids[0];
    let served = get(
        server.port,
        &format!("/v1/users/{user}/recommendations?k=4"),
    );
    let cli = d
        .run(&["recommend", "--user", user, "-k", "4", "--json"])
        .ok()
        .json();
    assert_eq!(served["strategy"], "als");
    assert_eq!(cli["strategy"], "als");
    let items = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["item_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(items(&served), items(&cli));
}
