//! Comparing runs: `runs compare` (diff-only, globs, long form, blocks, groups, paired tests),
//! `runs list` (tree, parents only, column checks), `runs pivot`, run-id prefixes, per-user
//! figures from `eval`, the within-noise warning and the forest plot.

use std::collections::BTreeMap;

use crate::util::{python_or_skip, Dir};

const SPEC: &str = r#"
[experiment]
name = "cmp"

[data]
input = "r.json.gz"

[eval]
k = 10
select = "ndcg_at_10"

[[models]]
name = "knn"
family = "item_knn"
[models.grid]
neighbors = [20, 21, 40]
shrinkage = [0.0, 10.0]

[[models]]
name = "ease"
family = "ease"
[models.grid]
lambda = [50.0, 200.0]

[[models]]
name = "popularity"
family = "popularity"
"#;

/// One experiment run; returns the directory and `run --json`.
fn experiment() -> (Dir, serde_json::Value) {
    let d = Dir::new();
    d.generate(400, 150, 6000, 31);
    d.write("s.toml", SPEC);
    let out = d.run(&["run", "s.toml", "--json"]).ok().json();
    (d, out)
}

/// The runs of experiment `cmp` that match `filter`, with `columns`, as `runs list --json`.
fn listed(d: &Dir, filter: &str, columns: &str) -> Vec<serde_json::Value> {
    d.run(&[
        "runs",
        "list",
        "--experiment",
        "cmp",
        "--filter",
        filter,
        "--columns",
        columns,
        "--json",
    ])
    .ok()
    .json()
    .as_array()
    .unwrap()
    .clone()
}

/// The final child of each entry of the parent run `parent`, by entry name.
fn finals(d: &Dir, parent: &str) -> BTreeMap<String, String> {
    let filter =
        format!("tags.`recflow.role` = 'final' and tags.`mlflow.parentRunId` = '{parent}'");
    listed(d, &filter, "run_id,tags.recflow.entry")
        .iter()
        .map(|r| {
            (
                r["tags.recflow.entry"].as_str().unwrap().to_string(),
                r["run_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Rule: `runs compare` scales: `--children-of` a parent given by an id prefix, `--diff-only`
/// drops constant rows, row labels are never cut (wide tables go in blocks of run columns),
/// `--metrics`/`--params` select by glob, `--long` gives (run, key, value), and an ambiguous
/// prefix is an error listing the matches.
#[test]
fn compare_scales_to_a_whole_search_with_diff_only_globs_blocks_and_prefixes() {
    let (d, out) = experiment();
    let parent = out["parent_run_id"].as_str().unwrap();
    let children = out["child_run_ids"].as_array().unwrap().len();
    assert!(children >= 10, "{children}");
    let all = d
        .run_env(
            &["runs", "compare", "--children-of", &parent[..8]],
            &[("COLUMNS", "100")],
        )
        .ok();
    for line in all.stdout.lines().filter(|l| !l.starts_with('(')) {
        assert!(line.chars().count() <= 100, "wider than COLUMNS: {line}");
        let label = line.split("  ").next().unwrap_or("");
        assert!(!label.contains('…'), "a row label was cut: {line}");
    }
    // Every child's id prefix appears in some block's header.
    for id in out["child_run_ids"].as_array().unwrap() {
        assert!(all.stdout.contains(&id.as_str().unwrap()[..8]));
    }
    // The trials of one entry share `entry` and `family`: --diff-only drops those rows.
    let knn: Vec<String> = d
        .run(&[
            "runs",
            "list",
            "--experiment",
            "cmp",
            "--filter",
            "tags.`recflow.entry` = 'knn' and tags.`recflow.role` = 'trial'",
            "--columns",
            "run_id",
            "--csv",
        ])
        .ok()
        .stdout
        .lines()
        .skip(1)
        .map(|l| l[..8].to_string())
        .collect();
    assert_eq!(knn.len(), 6);
    let mut args: Vec<&str> = vec!["runs", "compare"];
    args.extend(knn.iter().map(String::as_str));
    let full = d.run(&args).ok();
    args.push("--diff-only");
    let diff = d.run(&args).ok();
    assert!(full.stdout.contains("params.family"), "{}", full.stdout);
    assert!(
        full.stdout.contains("the same in every run"),
        "{}",
        full.stdout
    );
    assert!(!diff.stdout.contains("params.family"), "{}", diff.stdout);
    assert!(diff.stdout.contains("params.neighbors"), "{}", diff.stdout);

    let csv = d
        .run(&[
            "runs",
            "compare",
            "--children-of",
            parent,
            "--metrics",
            "val_ndcg*",
            "--params",
            "neigh*,lambda",
            "--csv",
        ])
        .ok();
    let header: Vec<&str> = csv.stdout.lines().next().unwrap().split(',').collect();
    assert_eq!(header[..2], ["run_id", "run_name"]);
    assert!(header.contains(&"params.neighbors") && header.contains(&"metrics.val_ndcg_at_10"));
    assert!(
        header[2..].iter().all(|h| h.starts_with("params.neigh")
            || *h == "params.lambda"
            || h.starts_with("metrics.val_ndcg")),
        "{header:?}"
    );
    assert_eq!(csv.stdout.lines().count(), children + 1, "one row per run");

    let long = d
        .run(&[
            "runs",
            "compare",
            "--children-of",
            parent,
            "--metrics",
            "val_ndcg_at_10",
            "--params",
            "none",
            "--long",
            "--json",
        ])
        .ok()
        .json();
    let long = long.as_array().unwrap();
    assert_eq!(long.len(), children);
    assert!(long
        .iter()
        .all(|r| r["key"] == "metrics.val_ndcg_at_10" && r["value"].is_number()));

    // A second run makes more runs than hex digits: two share a first character (pigeonhole).
    d.run(&["run", "s.toml"]).ok();
    let ids: Vec<String> = d
        .run(&[
            "runs",
            "list",
            "--columns",
            "run_id",
            "--csv",
            "--max-results",
            "1000",
        ])
        .ok()
        .stdout
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect();
    assert!(ids.len() > 16, "{}", ids.len());
    let mut by_first: BTreeMap<char, Vec<&String>> = BTreeMap::new();
    for id in &ids {
        by_first
            .entry(id.chars().next().unwrap())
            .or_default()
            .push(id);
    }
    let (c, shared) = by_first.iter().find(|(_, v)| v.len() > 1).unwrap();
    let amb = d.run(&["runs", "show", &c.to_string()]);
    assert_ne!(amb.code, 0);
    assert!(
        amb.stderr.contains("matches") && shared.iter().all(|i| amb.stderr.contains(i.as_str())),
        "{}",
        amb.stderr
    );
    let none = d.run(&["runs", "show", "ffffffffffff0"]);
    assert!(none.stderr.contains("not found"), "{}", none.stderr);
}

/// Rule: `runs list` puts children under their parent, `--parents-only` keeps one line per
/// `recflow run`, an unknown column is an error with the nearest key, and `--json` honours
/// `--columns`.
#[test]
fn runs_list_shows_the_tree_and_refuses_unknown_columns() {
    let (d, out) = experiment();
    let parent = out["parent_run_id"].as_str().unwrap();
    let list = d
        .run(&[
            "runs",
            "list",
            "--experiment",
            "cmp",
            "--columns",
            "run_id,name",
        ])
        .ok();
    let lines: Vec<&str> = list.stdout.lines().skip(1).collect();
    assert!(
        lines[0].starts_with(parent),
        "parent first: {}",
        list.stdout
    );
    assert!(
        lines[1..].iter().all(|l| l.contains("└ ")),
        "{}",
        list.stdout
    );
    let parents = d
        .run(&[
            "runs",
            "list",
            "--experiment",
            "cmp",
            "--parents-only",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(parents.as_array().unwrap().len(), 1);
    let bad = d.run(&[
        "runs",
        "list",
        "--experiment",
        "cmp",
        "--columns",
        "metrics.val_ndgc_at_10",
    ]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("metrics.val_ndcg_at_10"),
        "{}",
        bad.stderr
    );
    let cols = d
        .run(&[
            "runs",
            "list",
            "--experiment",
            "cmp",
            "--columns",
            "run_id,params.*",
            "--json",
        ])
        .ok()
        .json();
    let first = cols[0].as_object().unwrap();
    assert!(first.contains_key("run_id") && first.keys().any(|k| k.starts_with("params.")));
    assert!(
        !first.contains_key("status"),
        "only the asked columns: {first:?}"
    );
}

/// Rule: `--group-by` shows mean ± sd and the count per group, and `runs pivot` lays one metric
/// over two params with the best cell marked in the metric's direction.
#[test]
fn group_by_and_pivot_aggregate_runs_that_share_a_configuration() {
    let (d, out) = experiment();
    let parent = out["parent_run_id"].as_str().unwrap().to_string();
    let g = d
        .run(&[
            "runs",
            "compare",
            "--children-of",
            &finals(&d, &parent)["knn"],
            "--group-by",
            "params.neighbors",
        ])
        .fails_with(1);
    assert!(g.stderr.contains("no child runs"), "{}", g.stderr);
    let g = d
        .run(&[
            "runs",
            "compare",
            "--children-of",
            &parent,
            "--group-by",
            "params.neighbors",
            "--metrics",
            "val_ndcg_at_10",
            "--json",
        ])
        .ok()
        .json();
    let g = g.as_array().unwrap();
    // neighbors 20 and 21 each: two shrinkage trials, plus the final model at the chosen one.
    let n20 = g.iter().find(|r| r["params.neighbors"] == "20").unwrap();
    assert!(n20["runs"].as_u64().unwrap() >= 2, "{n20}");
    let m = &n20["metrics"]["val_ndcg_at_10"];
    assert!(m["mean"].is_number() && m["sd"].is_number(), "{m}");
    let pivot = d
        .run(&[
            "runs",
            "pivot",
            "--experiment",
            "cmp",
            "--filter",
            "tags.`recflow.role` = 'trial' and tags.`recflow.entry` = 'knn'",
            "--rows",
            "params.neighbors",
            "--cols",
            "params.shrinkage",
            "--value",
            "val_ndcg_at_10",
        ])
        .ok();
    let body: Vec<&str> = pivot.stdout.lines().collect();
    assert!(
        body[0].contains("0.0") && body[0].contains("10.0"),
        "{}",
        pivot.stdout
    );
    assert_eq!(
        body.iter()
            .filter(|l| !l.starts_with('(') && l.contains(" *"))
            .count(),
        1,
        "{}",
        pivot.stdout
    );
    // Rows in numeric order.
    let order: Vec<&str> = body[1..4]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(order, ["20", "21", "40"]);
}

/// Rule: `runs compare --significance` pairs the test users runs share and matches scipy's
/// paired t and Wilcoxon tests, with Holm's correction over the comparisons made; runs on
/// different test splits are refused; the CSVs read back in pandas at full precision.
#[test]
fn significance_pairs_users_agrees_with_scipy_and_refuses_other_splits() {
    let Some(py) =
        python_or_skip("significance_pairs_users_agrees_with_scipy_and_refuses_other_splits")
    else {
        return;
    };
    let (d, out) = experiment();
    let parent = out["parent_run_id"].as_str().unwrap().to_string();
    let f = finals(&d, &parent);
    let (pop, ease, knn) = (&f["popularity"], &f["ease"], &f["knn"]);
    let sig = d
        .run(&[
            "runs",
            "compare",
            pop,
            ease,
            knn,
            "--significance",
            "--json",
        ])
        .ok()
        .json();
    let csv = d
        .run(&["runs", "compare", pop, ease, knn, "--significance", "--csv"])
        .ok();
    d.write("sig.json", serde_json::to_vec(&sig).unwrap());
    d.write("sig.csv", &csv.stdout);
    let side = d.run(&["runs", "compare", pop, ease, knn, "--csv"]).ok();
    let side_json = d.run(&["runs", "compare", pop, ease, knn, "--json"]).ok();
    d.write("cmp.csv", &side.stdout);
    d.write("cmp.json", &side_json.stdout);
    let script = r#"
import glob, json, sys
import numpy as np, pandas as pd
from scipy import stats
sig = json.load(open("sig.json"))
def per_user(run):
    [p] = glob.glob(f"mlruns/*/{run}/artifacts/eval/per_user_test.parquet")
    return pd.read_parquet(p).set_index("user_id")["ndcg_at_10"].dropna()
ref = per_user(sig[0]["reference_run_id"])
raw_t, raw_w = [], []
for c in sig:
    a = per_user(c["run_id"])
    both = a.index.intersection(ref.index)
    x, y = a[both].to_numpy(), ref[both].to_numpy()
    assert len(both) == c["users"], (len(both), c["users"])
    assert abs((x - y).mean() - c["mean_diff"]) < 1e-12
    t = stats.ttest_rel(x, y)
    assert abs(t.statistic - c["t"]) < 1e-9 * max(1, abs(t.statistic)), (t, c["t"])
    assert abs(t.pvalue - c["t_p"]) <= 1e-6 * t.pvalue + 1e-300, (t.pvalue, c["t_p"])
    w = stats.wilcoxon(x, y, method="approx")
    assert abs(w.statistic - c["wilcoxon"]) < 1e-6, (w.statistic, c["wilcoxon"])
    assert abs(w.pvalue - c["wilcoxon_p"]) <= 1e-6 * max(w.pvalue, 1e-300) + 1e-300, (w.pvalue, c["wilcoxon_p"])
    d = np.diff([y, x], axis=0)[0]
    assert abs(d.mean() / d.std(ddof=1) - c["effect_size"]) < 1e-9
    raw_t.append(c["t_p"]); raw_w.append(c["wilcoxon_p"])
def holm(p):
    m = len(p); order = np.argsort(p); out = np.empty(m); run = 0.0
    for i, j in enumerate(order):
        run = max(run, min(1.0, (m - i) * p[j])); out[j] = run
    return out
for c, th, wh in zip(sig, holm(raw_t), holm(raw_w)):
    assert abs(c["t_p_holm"] - th) <= 1e-12 * max(th, 1e-300) + 1e-300 and c["comparisons"] == len(sig)
    assert abs(c["wilcoxon_p_holm"] - wh) <= 1e-12 * max(wh, 1e-300) + 1e-300
frame = pd.read_csv("sig.csv", float_precision="round_trip")
for c, (_, row) in zip(sig, frame.iterrows()):
    assert row["mean diff"] == c["mean_diff"], (row["mean diff"], c["mean_diff"])
    assert row["t p (Holm)"] == c["t_p_holm"]
# The side-by-side CSV: one row per run, every metric the same float as in the JSON.
cmp = pd.read_csv("cmp.csv", float_precision="round_trip")
runs = json.load(open("cmp.json"))
assert list(cmp["run_id"]) == [r["run_id"] for r in runs]
n = 0
for (_, row), r in zip(cmp.iterrows(), runs):
    for k, v in r["metrics"].items():
        assert row[f"metrics.{k}"] == v, (k, row[f"metrics.{k}"], v)
        n += 1
assert n > 20, n
print("ok", len(sig))
"#;
    d.write("check.py", script);
    let out = std::process::Command::new(py)
        .arg("check.py")
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok 2"));

    // Another seed draws another test split: those users do not pair.
    let again = d
        .run(&["run", "s.toml", "--set", "split.seed=7", "--json"])
        .ok()
        .json();
    let other = finals(&d, again["parent_run_id"].as_str().unwrap());
    let refused = d.run(&[
        "runs",
        "compare",
        pop,
        &other["popularity"],
        "--significance",
    ]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("different test splits"),
        "{}",
        refused.stderr
    );
    // A parent has no per-user figures.
    let refused = d.run(&["runs", "compare", &parent, pop, "--significance"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("a parent run") && refused.stderr.contains("final"),
        "{}",
        refused.stderr
    );
}

/// Rule: near-identical top configurations raise the "within noise" warning; the parent logs a
/// forest plot (PNG and SVG) of the test figures with their intervals.
#[test]
fn near_identical_top_configurations_are_called_noise_and_a_forest_plot_is_logged() {
    let (d, out) = experiment();
    let warnings = out["warnings"].as_array().unwrap();
    let noise: Vec<&serde_json::Value> = warnings
        .iter()
        .filter(|w| w["kind"] == "within_noise")
        .collect();
    assert!(
        noise.iter().any(|w| w["entry"] == "knn"),
        "neighbors 20 and 21 cannot be told apart: {warnings:?}"
    );
    let parent = out["parent_run_id"].as_str().unwrap();
    let plots: Vec<std::path::PathBuf> = std::fs::read_dir(d.join("mlruns"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join(parent).join("artifacts/plots"))
        .filter(|p| p.is_dir())
        .collect();
    let dir = &plots[0];
    for ext in ["png", "svg"] {
        let f = dir.join(format!("forest_test_ndcg_at_10.{ext}"));
        assert!(f.is_file(), "{} missing", f.display());
        assert!(std::fs::metadata(&f).unwrap().len() > 1000);
    }
    let svg = std::fs::read_to_string(dir.join("forest_test_ndcg_at_10.svg")).unwrap();
    for entry in ["ease", "knn", "popularity"] {
        assert!(svg.contains(entry), "{entry} not in the forest plot");
    }
}

/// Rule: `eval --per-user FILE` writes the per-user Parquet `recflow run` logs and reports a
/// bootstrap interval for every per-user metric.
#[test]
fn eval_writes_per_user_figures_and_intervals() {
    let d = Dir::new();
    d.generate(300, 120, 4000, 5);
    d.run(&["etl", "--input", "r.json.gz"]).ok();
    d.run(&["train-als", "--rank", "4", "--maxiter", "3"]).ok();
    let out = d
        .run(&["eval", "--per-user", "out/pu.parquet", "--json"])
        .ok()
        .json();
    assert!(d.join("out/pu.parquet").is_file());
    let ci = &out["intervals"]["test_ndcg_at_10"];
    let v = out["metrics"]["test_ndcg_at_10"].as_f64().unwrap();
    assert!(
        ci["low"].as_f64().unwrap() <= v && v <= ci["high"].as_f64().unwrap(),
        "{out}"
    );
    assert!(out["intervals"]["test_rmse"]["low"].is_number(), "{out}");
    let text = d.run(&["eval"]).ok();
    assert!(text.stdout.contains("95% CI"), "{}", text.stdout);
    // A folder is not a file: refused, nothing written.
    std::fs::create_dir_all(d.join("dir")).unwrap();
    let bad = d.run(&["eval", "--per-user", "dir"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("is a folder"), "{}", bad.stderr);
}

/// Rule: `eval.k` as a list reports every ranking metric at each cut-off, with its interval and
/// per-user figures (so runs pair at any of them); a bad list is refused with the file and line
/// before any work.
#[test]
fn a_list_of_cut_offs_reports_each_with_intervals_and_per_user_figures() {
    let d = Dir::new();
    d.generate(300, 120, 4000, 13);
    let spec = |k: &str| {
        format!(
            "[experiment]\nname = \"cmp\"\n[data]\ninput = \"r.json.gz\"\n[eval]\nk = {k}\nselect = \"ndcg_at_10\"\n\n[[models]]\nname = \"ease\"\nfamily = \"ease\"\nlambda = 100.0\n"
        )
    };
    d.write("s.toml", spec("[5, 10, 20]"));
    let out = d.run(&["run", "s.toml", "--json"]).ok().json();
    let parent = out["parent_run_id"].as_str().unwrap();
    let f = finals(&d, parent);
    let ease = d.run(&["runs", "show", &f["ease"], "--json"]).ok().json();
    let m = &ease["run"]["metrics"];
    for k in [5, 10, 20] {
        for key in [
            format!("test_ndcg_at_{k}"),
            format!("test_recall_at_{k}_ci_low"),
            format!("val_precision_at_{k}"),
        ] {
            assert!(m.get(&key).is_some(), "{key} missing: {m}");
        }
    }
    let sig = d
        .run(&[
            "runs",
            "compare",
            &f["popularity"],
            &f["ease"],
            "--significance",
            "--metric",
            "test_ndcg_at_20",
            "--json",
        ])
        .ok()
        .json();
    assert!(sig[0]["users"].as_u64().unwrap() > 100, "{sig}");
    let shown = d.run(&["run", "s.toml", "--show-settings"]).ok();
    assert!(shown.stdout.contains("[5, 10, 20]"), "{}", shown.stdout);
    for (k, says) in [
        ("[5, 5]", "twice"),
        ("[]", "empty"),
        ("[0, 10]", "at least 1"),
    ] {
        d.write("bad.toml", spec(k));
        let bad = d.run(&["run", "bad.toml"]);
        assert_ne!(bad.code, 0, "{k}");
        assert!(
            bad.stderr.contains("bad.toml") && bad.stderr.contains(says),
            "{k}: {}",
            bad.stderr
        );
    }
    d.write("bad.toml", spec("[5, 20]"));
    let bad = d.run(&["run", "bad.toml"]);
    assert!(bad.stderr.contains("ndcg_at_10"), "{}", bad.stderr);

    // Trials log per-user figures (on validation) only when asked.
    let trial_files = |parent: &str| -> Vec<std::path::PathBuf> {
        let filter =
            format!("tags.`recflow.role` = 'trial' and tags.`mlflow.parentRunId` = '{parent}'");
        listed(&d, &filter, "run_id,experiment_id")
            .iter()
            .map(|r| {
                d.join(&format!(
                    "mlruns/{}/{}/artifacts/eval/per_user_val.parquet",
                    r["experiment_id"].as_str().unwrap(),
                    r["run_id"].as_str().unwrap()
                ))
            })
            .collect()
    };
    let plain = trial_files(parent);
    assert!(!plain.is_empty() && plain.iter().all(|p| !p.exists()));
    let all = d
        .run(&["run", "s.toml", "--set", "eval.per_user=\"all\"", "--json"])
        .ok()
        .json();
    let asked = trial_files(all["parent_run_id"].as_str().unwrap());
    assert!(
        !asked.is_empty() && asked.iter().all(|p| p.is_file()),
        "{asked:?}"
    );
}
