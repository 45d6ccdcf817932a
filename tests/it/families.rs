//! Experiments over several model families: one spec, baselines as runs of their own, searches
//! beyond grids, repeats, early stopping, warnings, the leaderboard, `--resume`.

use crate::util::Dir;

fn data() -> Dir {
    let d = Dir::new();
    d.generate(400, 150, 6000, 21);
    d
}

const SPEC: &str = r#"
[experiment]
name = "families"

[data]
input = "r.json.gz"

[eval]
k = 10
select = "ndcg_at_10"

[[models]]
name = "implicit"
family = "als"
implicit = true
max_iter = 4
repeats = 2
[models.grid]
rank = [4, 8]

[[models]]
name = "ease"
family = "ease"
[models.search]
trials = 3
seed = 5
lambda = { min = 10.0, max = 1000.0, log = true }

[[models]]
name = "knn"
family = "item_knn"
neighbors = 20

[[models]]
name = "explicit"
family = "als"
max_iter = 4
early_stopping = { metric = "rmse", patience = 1 }
[models.grid]
rank = [4]
reg = [0.01]
"#;

#[test]
fn one_spec_compares_families_against_baselines_and_names_the_winner() {
    let d = data();
    d.write("s.toml", SPEC);
    let out = d.run(&["run", "s.toml", "--json"]).ok().json();
    let rows = out["leaderboard"]["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["entry"].as_str().unwrap()).collect();
    // Baselines are entries of their own: popularity always, biases with a rating model.
    for n in [
        "implicit",
        "ease",
        "knn",
        "explicit",
        "popularity",
        "biases",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    assert_eq!(rows.iter().filter(|r| r["winner"] == true).count(), 1);
    let winner = rows.iter().find(|r| r["winner"] == true).unwrap();
    // The winner is the best on validation among the ranked entries.
    let best = rows
        .iter()
        .filter_map(|r| r["selection"].as_f64())
        .fold(f64::MIN, f64::max);
    assert_eq!(winner["selection"].as_f64(), Some(best));
    // Repeats: two fits per configuration, mean and sd under the trial.
    let implicit = out["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["trials"][0]["config"]["rank"].is_number() && e["final"]["params"]["implicit"] == true
        })
        .unwrap();
    assert_eq!(implicit["trials"].as_array().unwrap().len(), 2);
    // A random search of three trials, inside its range.
    let ease = out["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["final"]["params"]["lambda"].is_number())
        .unwrap();
    let trials = ease["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 3);
    for t in trials {
        let l = t["config"]["lambda"].as_f64().unwrap();
        assert!((10.0..=1000.0).contains(&l), "{l}");
    }
    // The leaderboard is a parent artifact too.
    let parent = out["parent_run_id"].as_str().unwrap();
    let show = d.run(&["runs", "show", parent, "--json"]).ok().json();
    let arts: Vec<&str> = show["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert!(arts.contains(&"leaderboard.csv"), "{arts:?}");
    assert!(show["run"]["metrics"]
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.starts_with("best.test_")));
    // The saved winner is served by `recommend`, naming its family.
    let ds = recflow::data::store::load_dataset(&d.join(out["data"].as_str().unwrap())).unwrap();
    let recs = d
        .run(&["recommend", "--user", &ds.user_ids[0], "-k", "3", "--json"])
        .ok()
        .json();
    assert_eq!(recs["strategy"], winner["family"]);
}

#[test]
fn a_resumed_search_fits_only_what_it_has_not_finished() {
    let d = data();
    d.write("s.toml", SPEC);
    let first = d.run(&["run", "s.toml", "--json"]).ok().json();
    let parent = first["parent_run_id"].as_str().unwrap().to_string();
    // Widen the implicit grid: the two old configurations are reused, one new one is fitted.
    let again = d
        .run(&[
            "run",
            "s.toml",
            "--resume",
            "--set",
            "models.implicit.grid.rank=[4, 8, 12]",
            "--json",
        ])
        .ok();
    let out = again.json();
    assert_eq!(out["parent_run_id"].as_str(), Some(parent.as_str()));
    assert!(
        again.stderr.contains("not fitted again"),
        "{}",
        again.stderr
    );
    let implicit = out["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["final"]["params"]["implicit"] == true)
        .unwrap();
    assert_eq!(implicit["trials"].as_array().unwrap().len(), 3);
}

#[test]
fn bad_entries_are_refused_before_any_run() {
    let d = data();
    let cases: &[(&str, &str)] = &[
        ("name = \"knn\"\n", "name = \"ease\"\n"),
        ("family = \"ease\"\n", "family = \"ease\"\nrepeats = 0\n"),
        ("min = 10.0, max = 1000.0", "min = 1000.0, max = 10.0"),
        (
            "min = 10.0, max = 1000.0, log = true",
            "min = 0.0, max = 1000.0, log = true",
        ),
        ("neighbors = 20\n", "neighbors = 20\nlambda = 3\n"),
    ];
    let msgs = [
        "is used twice",
        "`repeats` must be a whole number of at least 1",
        "has min 1000 above max 10",
        "touches 0",
        "has no parameter `lambda`",
    ];
    for ((from, to), msg) in cases.iter().zip(msgs) {
        assert!(SPEC.contains(from), "{from}");
        d.write("s.toml", SPEC.replace(from, to));
        let run = d.run(&["run", "s.toml"]).fails_with(1);
        assert!(run.stderr.contains(msg), "{to}: {}", run.stderr);
        assert!(run.stderr.contains("s.toml:"), "{to}: {}", run.stderr);
        assert!(!d.join("mlruns").exists());
    }
    // Early stopping needs a validation split; a search over the limit is refused.
    d.write(
        "s.toml",
        format!("{SPEC}\n[split]\nvalidation_fraction = 0.0\n"),
    );
    let run = d.run(&["run", "s.toml"]).fails_with(1);
    assert!(
        run.stderr
            .contains("early stopping needs a validation split"),
        "{}",
        run.stderr
    );
    d.write("s.toml", SPEC);
    let run = d.run(&["run", "s.toml", "--max-runs", "3"]).fails_with(1);
    assert!(
        run.stderr.contains("more than the limit of 3"),
        "{}",
        run.stderr
    );
    assert!(!d.join("mlruns").exists());
}

/// Rule: every final model reports 95% intervals over test users, writes its per-user figures,
/// and is compared user by user with the best baseline (Holm-corrected).
#[test]
fn final_models_carry_intervals_per_user_figures_and_a_paired_comparison() {
    let d = data();
    d.write(
        "s.toml",
        r#"
[experiment]
name = "paired"

[data]
input = "r.json.gz"

[eval]
k = 10
select = "ndcg_at_10"

[[models]]
name = "ease"
family = "ease"
lambda = 100.0

[[models]]
name = "knn"
family = "item_knn"
neighbors = 20
"#,
    );
    let out = d.run(&["run", "s.toml", "--json"]).ok().json();
    let board = &out["leaderboard"];
    let rows = board["rows"].as_array().unwrap();
    for r in rows {
        let test = |k: &str| {
            r["test"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p[0] == k)
                .and_then(|p| p[1].as_f64())
        };
        let ci = r["test_ci"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c[0] == "test_ndcg_at_10")
            .unwrap_or_else(|| panic!("no ndcg interval in {r}"));
        let (lo, hi) = (ci[1].as_f64().unwrap(), ci[2].as_f64().unwrap());
        let v = test("test_ndcg_at_10").unwrap();
        assert!(lo <= v + 1e-12 && v <= hi + 1e-12, "{lo} <= {v} <= {hi}");
    }
    // Two models against the one baseline: two comparisons, corrected together.
    let cmp = board["comparisons"].as_array().unwrap();
    assert_eq!(cmp.len(), 2, "{cmp:?}");
    for c in cmp {
        assert_eq!(c["baseline"], "popularity");
        assert_eq!(c["of"], 2);
        assert!(c["t_p_holm"].as_f64().unwrap() >= c["t_p"].as_f64().unwrap());
        let (lo, m, hi) = (
            c["ci_low"].as_f64().unwrap(),
            c["mean_diff"].as_f64().unwrap(),
            c["ci_high"].as_f64().unwrap(),
        );
        assert!(lo <= m && m <= hi, "{c}");
    }
    // The final child of `ease` logs the interval and the per-user table, whose mean is the
    // logged figure.
    let finals: Vec<serde_json::Value> = out["child_run_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| {
            d.run(&["runs", "show", id.as_str().unwrap(), "--json"])
                .ok()
                .json()
        })
        .filter(|s| s["run"]["tags"]["recflow.role"] == "final")
        .collect();
    assert!(!finals.is_empty());
    let f = &finals[0];
    let metric = |k: &str| {
        let m = &f["run"]["metrics"][k];
        m.as_f64().or_else(|| m["value"].as_f64())
    };
    let ndcg = metric("test_ndcg_at_10").unwrap();
    assert!(metric("test_ndcg_at_10_ci_low").unwrap() <= ndcg);
    assert!(metric("test_ndcg_at_10_ci_high").unwrap() >= ndcg);
    let uri = f["run"]["info"]["artifact_uri"].as_str().unwrap();
    let path = std::path::PathBuf::from(uri.trim_start_matches("file://"))
        .join("eval/per_user_test.parquet");
    use polars::prelude::*;
    let df = ParquetReader::new(std::fs::File::open(&path).unwrap())
        .finish()
        .unwrap();
    let col = df.column("ndcg_at_10").unwrap().f64().unwrap().clone();
    let mean = col.mean().unwrap();
    assert!((mean - ndcg).abs() < 1e-9, "{mean} vs {ndcg}");
    assert!(df.column("user_id").is_ok());
}

/// Rule: on implicit feedback (no rating column: every rating 1) no rating error is reported, and
/// selecting on one is refused with the metric to use instead.
#[test]
fn implicit_feedback_reports_no_rmse_and_refuses_to_select_on_it() {
    let d = Dir::new();
    let mut csv = String::from("user,item\n");
    for u in 0..60 {
        for j in 0..8 {
            csv.push_str(&format!("u{u},i{}\n", (u * 7 + j * 3) % 40));
        }
    }
    d.write("pairs.csv", csv);
    d.run(&[
        "etl",
        "--input",
        "pairs.csv",
        "--min-interactions",
        "1",
        "--output",
        "proc",
    ])
    .ok();
    let refused = d
        .run(&["train", "--family", "biases", "--data", "proc"])
        .fails_with(1);
    assert!(
        refused.stderr.contains("implicit feedback") && refused.stderr.contains("ndcg_at_10"),
        "{}",
        refused.stderr
    );
    let out = d
        .run(&[
            "train",
            "--family",
            "biases",
            "--data",
            "proc",
            "--select",
            "ndcg_at_10",
            "--json",
        ])
        .ok()
        .json();
    let test = &out["winner"]["test"];
    assert!(test["test_ndcg_at_10"].is_number(), "{test}");
    assert!(test.get("test_rmse").is_none(), "{test}");
}

/// Rule: `runs best` follows the metric's direction (`--max`/`--min` only override it) and takes
/// `metrics.`-prefixed keys; `runs compare` stars the best value in its direction, stars nothing
/// when all are equal, and writes clean full-precision CSV.
#[test]
fn runs_best_and_compare_follow_each_metrics_direction() {
    let d = data();
    d.write(
        "s.toml",
        r#"
[experiment]
name = "directions"
[data]
input = "r.json.gz"
[eval]
select = "ndcg_at_10"
[[models]]
name = "ease"
family = "ease"
lambda = 100.0
"#,
    );
    let out = d.run(&["run", "s.toml", "--json"]).ok().json();
    let ndcgs: Vec<f64> = out["leaderboard"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| {
            r["test"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p[0] == "test_ndcg_at_10")
                .and_then(|p| p[1].as_f64())
        })
        .collect();
    let (hi, lo) = (
        ndcgs.iter().copied().fold(f64::MIN, f64::max),
        ndcgs.iter().copied().fold(f64::MAX, f64::min),
    );
    assert!(hi > lo, "{ndcgs:?}");
    let best = |extra: &[&str]| {
        let mut args = vec![
            "runs",
            "best",
            "--experiment",
            "directions",
            "--metric",
            "metrics.test_ndcg_at_10",
            "--json",
        ];
        args.extend_from_slice(extra);
        let r = d.run(&args).ok().json();
        let m = &r["metrics"]["test_ndcg_at_10"];
        m.as_f64().or_else(|| m["value"].as_f64()).unwrap()
    };
    assert_eq!(best(&[]), hi, "higher is better for NDCG");
    assert_eq!(best(&["--min"]), lo, "--min overrides the direction");
    let unknown = d.run(&[
        "runs",
        "best",
        "--experiment",
        "directions",
        "--metric",
        "made_up",
    ]);
    assert_ne!(unknown.code, 0);
    assert!(unknown.stderr.contains("--max"), "{}", unknown.stderr);

    let ids: Vec<&str> = out["child_run_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // A run against itself: every row equal, nothing starred.
    let same = d.run(&["runs", "compare", ids[0], ids[0]]).ok();
    let starred = |out: &str| out.lines().any(|l| !l.starts_with('(') && l.contains(" *"));
    assert!(!starred(&same.stdout), "{}", same.stdout);
    let csv = d.run(&["runs", "compare", ids[0], ids[1], "--csv"]).ok();
    assert!(
        !csv.stdout.contains('≠') && !csv.stdout.contains(" *"),
        "{}",
        csv.stdout
    );
    let json = d
        .run(&["runs", "compare", ids[0], ids[1], "--json"])
        .ok()
        .json();
    // One header row, one row per run (as `mlflow.search_runs`); every digit kept.
    let mut lines = csv.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[..2], ["run_id", "run_name"]);
    let mut checked = 0;
    for (i, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[0], json[i]["run_id"], "{line}");
        for (key, cell) in header.iter().zip(&cells).skip(2) {
            let Some(key) = key.strip_prefix("metrics.") else {
                assert!(key.starts_with("params."), "{key}");
                continue;
            };
            if let Ok(v) = cell.parse::<f64>() {
                assert_eq!(
                    Some(v),
                    json[i]["metrics"][key].as_f64(),
                    "{key}: full precision in CSV"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 4, "{}", csv.stdout);
}
