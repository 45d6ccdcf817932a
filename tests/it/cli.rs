//! Snapshots of every `--help` and of the settings representative invocations resolve to
//! (`--show-settings`): the command-line surface and its defaults, reviewed as text.

use crate::util::Dir;

const COMMANDS: &[&[&str]] = &[
    &[],
    &["etl"],
    &["generate"],
    &["download"],
    &["train-als"],
    &["train"],
    &["eval"],
    &["recommend"],
    &["run"],
    &["experiments", "list"],
    &["runs", "list"],
    &["runs", "show"],
    &["runs", "compare"],
    &["runs", "pivot"],
    &["runs", "best"],
    &["sync"],
    &["eda"],
    &["serve"],
    &["deploy"],
    &["config"],
];

#[test]
fn every_help_text_is_as_reviewed() {
    let d = Dir::new();
    for cmd in COMMANDS {
        let mut args: Vec<&str> = cmd.to_vec();
        args.push("--help");
        let run = d.run_env(&args, &[("COLUMNS", "100")]).ok();
        let name = if cmd.is_empty() {
            "help".to_string()
        } else {
            format!("help_{}", cmd.join("_"))
        };
        insta::assert_snapshot!(name, run.stdout);
    }
}

/// `--show-settings` output with the machine-dependent user name fixed.
fn settings(d: &Dir, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push("--show-settings");
    d.run_env(&all, &[("USER", "tester"), ("LOGNAME", "tester")])
        .ok()
        .stdout
}

#[test]
fn representative_invocations_resolve_to_the_reviewed_settings() {
    let d = Dir::new();
    d.write("r.csv", "user,item,rating\na,x,4\n");
    std::fs::create_dir_all(d.join("proc")).unwrap();
    insta::assert_snapshot!(
        "settings_etl",
        settings(&d, &["etl", "--input", "r.csv", "--min-interactions", "2"])
    );
    insta::assert_snapshot!("settings_etl_env", settings(&d, &["etl"]));
    insta::assert_snapshot!(
        "settings_train_als",
        settings(
            &d,
            &["train-als", "--data", "proc", "--rank", "8", "--implicit"]
        )
    );
    insta::assert_snapshot!(
        "settings_train_grid",
        settings(&d, &["train", "--data", "proc", "--rank", "8,16"])
    );
    insta::assert_snapshot!(
        "settings_train_ease",
        settings(
            &d,
            &[
                "train",
                "--data",
                "proc",
                "--family",
                "ease",
                "--grid",
                "lambda=100,500"
            ]
        )
    );
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quickstart.toml");
    d.write("q.toml", std::fs::read_to_string(spec).unwrap());
    let text = settings(
        &d,
        &[
            "run",
            "q.toml",
            "--set",
            "eval.k=5",
            "--set",
            "eval.select=ndcg_at_5",
        ],
    );
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The working tree's git state differs between checkouts.
    v["experiment"]["git"] = serde_json::Value::Null;
    insta::assert_snapshot!(
        "settings_run_quickstart",
        serde_json::to_string_pretty(&v).unwrap()
    );
}
