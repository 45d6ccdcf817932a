//! ETL from the command line: formats, cleaning rules, ids, outputs, and every bad-input case.

use crate::util::{python_or_skip, Dir};

const REVIEWS: &str = r#"{"reviewerID": "A1", "asin": "B1", "reviewerName": "x", "helpful": [0, 0], "reviewText": "good \"cable\"", "overall": 5.0, "summary": "ok", "unixReviewTime": 100, "reviewTime": "01 1, 1970"}
{"reviewerID": "A1", "asin": "B2", "overall": 4.0, "unixReviewTime": 101}
{"reviewerID": "A2", "asin": "B1", "overall": 3.0, "unixReviewTime": 102, "verified": true, "style": {"Color:": " Black"}, "vote": "2"}
{"reviewerID": "A2", "asin": "B2", "overall": 2.0, "unixReviewTime": 103}
{"reviewerID": "A3", "asin": "B1", "overall": 1.0, "unixReviewTime": 104}
"#;

fn etl(d: &Dir, input: &str, extra: &[&str]) -> crate::util::Run {
    let mut args = vec!["etl", "--input", input, "--output", "out"];
    args.extend_from_slice(extra);
    d.run(&args)
}

#[test]
fn json_gz_reviews_become_parquet_tables_and_summary() {
    let d = Dir::new();
    d.write_gz("r.json.gz", REVIEWS);
    let run = etl(&d, "r.json.gz", &["--min-interactions", "1"]).ok();
    assert!(
        run.stderr
            .contains("✅ Processed 5 rows → 3 users × 2 items"),
        "{}",
        run.stderr
    );
    // Only final paths are reported, never a staging folder.
    assert!(run.stdout.contains("written    out/"), "{}", run.stdout);
    assert!(
        !run.stderr.contains(".staging") && !run.stderr.contains(".etl-"),
        "{}",
        run.stderr
    );
    for f in [
        "interactions.parquet",
        "user_map.parquet",
        "item_map.parquet",
        "popular_items.parquet",
    ] {
        assert!(d.join("out").join(f).metadata().unwrap().len() > 0, "{f}");
    }
    let s = d.json("out/etl_summary.json");
    assert_eq!(s["rows_read"], 5);
    assert_eq!(s["users"], 3);
    assert_eq!(s["items"], 2);
    assert_eq!(s["ratings"], 5);
    assert_eq!(s["rating_histogram"]["5"], 1);
    assert_eq!(s["input"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(s["has_timestamp"], true);
}

#[test]
fn dense_ids_follow_frequency_then_string_order() {
    let d = Dir::new();
    d.write_gz("r.json.gz", REVIEWS);
    etl(&d, "r.json.gz", &["--min-interactions", "1"]).ok();
    let maps = recflow::data::store::load_dataset(&d.join("out")).unwrap();
    // A1 and A2 have two ratings each (tie broken by string), A3 one; B1 has three.
    assert_eq!(maps.user_ids, vec!["A1", "A2", "A3"]);
    assert_eq!(maps.item_ids, vec!["B1", "B2"]);
}

#[test]
fn duplicate_pairs_keep_the_newest_rating() {
    let d = Dir::new();
    d.write(
        "r.csv",
        "user_id,item_id,rating,timestamp\nu1,i1,1,10\nu1,i1,5,30\nu1,i1,3,20\nu2,i1,4,5\n",
    );
    etl(&d, "r.csv", &["--min-interactions", "1"]).ok();
    let s = d.json("out/etl_summary.json");
    assert_eq!(s["drops"]["duplicate"], 2);
    let ds = recflow::data::store::load_dataset(&d.join("out")).unwrap();
    let u1 = ds.user_ids.iter().position(|u| u == "u1").unwrap() as u32;
    let k = ds.interactions.user.iter().position(|&u| u == u1).unwrap();
    assert_eq!(ds.interactions.rating[k], 5.0);
}

#[test]
fn tsv_without_header_maps_columns_by_position() {
    let d = Dir::new();
    d.write(
        "u.data",
        "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t242\t1\t878887116\n",
    );
    etl(
        &d,
        "u.data",
        &[
            "--min-interactions",
            "1",
            "--columns",
            "user=0,item=1,rating=2,timestamp=3",
        ],
    )
    .ok();
    let ds = recflow::data::store::load_dataset(&d.join("out")).unwrap();
    assert_eq!(ds.interactions.len(), 3);
    // All users have one rating: ties ordered as strings, "186" < "196" < "22".
    assert_eq!(ds.user_ids, vec!["186", "196", "22"]);
}

#[test]
fn file_without_rating_column_is_implicit_feedback() {
    let d = Dir::new();
    d.write("clicks.csv", "user,item\na,x\na,y\nb,x\n");
    etl(&d, "clicks.csv", &["--min-interactions", "1"]).ok();
    let s = d.json("out/etl_summary.json");
    assert_eq!(s["implicit"], true);
    assert_eq!(s["rating_histogram"]["1"], 3);
}

#[test]
fn counts_pass_with_a_wider_rating_range() {
    let d = Dir::new();
    d.write("plays.csv", "user,item,rating\na,x,17\na,y,3\nb,x,250\n");
    etl(
        &d,
        "plays.csv",
        &["--min-interactions", "1", "--rating-range", "1..inf"],
    )
    .ok();
    assert_eq!(d.json("out/etl_summary.json")["ratings"], 3);
    // A set range drops what falls outside it, counted.
    etl(
        &d,
        "plays.csv",
        &["--min-interactions", "1", "--rating-range", "1..5"],
    )
    .ok();
    assert_eq!(
        d.json("out/etl_summary.json")["drops"]["rating_out_of_range"],
        2
    );
}

/// Rule (DECISIONS.md): without a set range, ratings on a 0.5 grid within 0..10 are a star scale
/// (min..max), non-negative integers are counts, and anything else is an error asking for it.
#[test]
fn an_unset_rating_range_is_inferred_from_the_data_and_said_so() {
    let d = Dir::new();
    d.write(
        "half.csv",
        "user,item,rating
a,x,0.5
a,y,4.5
b,x,5
",
    );
    etl(&d, "half.csv", &["--min-interactions", "1"]).ok();
    let s = d.json("out/etl_summary.json");
    assert_eq!(s["ratings"], 3, "half stars are kept: {s}");
    assert_eq!(s["rating_range"], "0.5..5");
    assert!(
        s["rating_range_rule"]
            .as_str()
            .unwrap()
            .contains("star scale"),
        "{s}"
    );
    d.write(
        "plays.csv",
        "user,item,rating
a,x,17
a,y,3
b,x,250
",
    );
    etl(&d, "plays.csv", &["--min-interactions", "1"]).ok();
    let s = d.json("out/etl_summary.json");
    assert_eq!(
        (s["ratings"].as_u64(), s["rating_range"].as_str()),
        (Some(3), Some("0..inf"))
    );
    d.write(
        "odd.csv",
        "user,item,rating
a,x,-1.25
a,y,4
",
    );
    let bad = etl(&d, "odd.csv", &["--min-interactions", "1"]).fails_with(1);
    assert!(
        bad.stderr.contains("odd.csv") && bad.stderr.contains("--rating-range"),
        "{}",
        bad.stderr
    );
}

#[test]
fn parquet_input_is_read_with_a_column_mapping() {
    let d = Dir::new();
    d.write(
        "r.csv",
        "user_id,item_id,rating\nu1,i1,4\nu2,i1,5\nu2,i2,3\n",
    );
    etl(&d, "r.csv", &["--min-interactions", "1"]).ok();
    std::fs::copy(d.join("out/interactions.parquet"), d.join("in.parquet")).unwrap();
    d.run(&[
        "etl",
        "--input",
        "in.parquet",
        "--output",
        "out2",
        "--min-interactions",
        "1",
        "--columns",
        "user=user_idx,item=item_idx",
    ])
    .ok();
    assert_eq!(d.json("out2/etl_summary.json")["ratings"], 3);
}

#[test]
fn k_core_leaves_every_user_and_item_with_n_ratings() {
    let d = Dir::new();
    // A 3x3 full block survives N=3; the extra user with 1 rating and item with 1 rating do not.
    let mut csv = String::from("user,item,rating\n");
    for u in 0..3 {
        for i in 0..3 {
            csv.push_str(&format!("u{u},i{i},4\n"));
        }
    }
    csv.push_str("lonely,i0,5\nu0,rare,5\n");
    d.write("r.csv", csv);
    etl(&d, "r.csv", &["--min-interactions", "3"]).ok();
    let s = d.json("out/etl_summary.json");
    assert_eq!(
        (
            s["users"].as_u64(),
            s["items"].as_u64(),
            s["ratings"].as_u64()
        ),
        (Some(3), Some(3), Some(9))
    );
}

#[test]
fn min_interactions_comes_from_the_environment_when_not_given() {
    let d = Dir::new();
    d.write(
        "r.csv",
        "user,item,rating\na,x,4\na,y,4\nb,x,4\nb,y,4\nc,x,4\n",
    );
    d.run_env(
        &["etl", "--input", "r.csv", "--output", "out"],
        &[("MIN_INTERACTIONS", "2")],
    )
    .ok();
    assert_eq!(d.json("out/etl_summary.json")["users"], 2);
    // The command line beats the environment and .env.
    d.write(".env", "MIN_INTERACTIONS=2\n");
    d.run_env(
        &[
            "etl",
            "--input",
            "r.csv",
            "--output",
            "out",
            "--min-interactions",
            "1",
        ],
        &[("MIN_INTERACTIONS", "2")],
    )
    .ok();
    assert_eq!(d.json("out/etl_summary.json")["users"], 3);
}

#[test]
fn dotenv_is_read_below_the_environment() {
    let d = Dir::new();
    d.write(".env", "MIN_INTERACTIONS=3\nMLFLOW_TRACKING_TOKEN=s3cret\n");
    let run = d.run(&["config", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["MIN_INTERACTIONS"]["value"], "3");
    assert_eq!(v["MIN_INTERACTIONS"]["source"], "dotenv");
    assert_eq!(v["MLFLOW_TRACKING_TOKEN"]["value"], "****");
    assert!(!run.stdout.contains("s3cret"));
    let run = d
        .run_env(&["config", "--json"], &[("MIN_INTERACTIONS", "9")])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["MIN_INTERACTIONS"]["value"], "9");
}

#[test]
fn same_input_gives_identical_outputs() {
    let d = Dir::new();
    d.write_gz("r.json.gz", REVIEWS);
    etl(&d, "r.json.gz", &["--min-interactions", "1"]).ok();
    let a = std::fs::read(d.join("out/interactions.parquet")).unwrap();
    etl(&d, "r.json.gz", &["--min-interactions", "1"]).ok();
    assert_eq!(
        a,
        std::fs::read(d.join("out/interactions.parquet")).unwrap()
    );
}

// ---- bad input: exit 1, a message naming the file/line/field, no panic, earlier outputs intact

#[test]
fn missing_input_names_the_file() {
    let d = Dir::new();
    let run = etl(&d, "nope.json", &[]).fails_with(1);
    assert!(
        run.stderr.contains("`nope.json` does not exist"),
        "{}",
        run.stderr
    );
}

#[test]
fn empty_file_is_reported() {
    let d = Dir::new();
    d.write("e.json", "");
    let run = etl(&d, "e.json", &[]).fails_with(1);
    assert!(run.stderr.contains("`e.json` is empty"), "{}", run.stderr);
}

#[test]
fn truncated_gzip_is_reported_with_the_file() {
    let d = Dir::new();
    let text = REVIEWS.repeat(200);
    let full = d.write_gz("full.json.gz", &text);
    let bytes = std::fs::read(full).unwrap();
    d.write("cut.json.gz", &bytes[..bytes.len() / 2]);
    let run = etl(&d, "cut.json.gz", &["--min-interactions", "1"]).fails_with(1);
    assert!(
        run.stderr
            .contains("`cut.json.gz` is truncated or not valid gzip"),
        "{}",
        run.stderr
    );
    assert!(!d.join("out/interactions.parquet").exists());
}

#[test]
fn malformed_line_is_skipped_and_counted_or_fails_with_strict() {
    let d = Dir::new();
    let text = REVIEWS.replace(
        "\"asin\": \"B2\", \"overall\": 4.0",
        "\"asin\": \"B2\", \"overall\": 4.0,,",
    );
    d.write("r.json", &text);
    etl(&d, "r.json", &["--min-interactions", "1"]).ok();
    assert_eq!(d.json("out/etl_summary.json")["drops"]["malformed_line"], 1);
    let run = etl(&d, "r.json", &["--min-interactions", "1", "--strict"]).fails_with(1);
    assert!(run.stderr.contains("`r.json` line 2:"), "{}", run.stderr);
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
}

#[test]
fn field_missing_from_every_row_is_named() {
    let d = Dir::new();
    d.write(
        "r.json",
        "{\"reviewerID\": \"A\", \"product\": \"B\", \"overall\": 5}\n",
    );
    let run = etl(&d, "r.json", &[]).fails_with(1);
    assert!(
        run.stderr.contains("no row has a `item` field"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("`product`"), "{}", run.stderr);
}

#[test]
fn non_numeric_ratings_are_counted_and_all_bad_fails() {
    let d = Dir::new();
    d.write("r.csv", "user,item,rating\na,x,five\nb,x,4\n");
    etl(&d, "r.csv", &["--min-interactions", "1"]).ok();
    assert_eq!(d.json("out/etl_summary.json")["drops"]["bad_rating"], 1);
    d.write("bad.csv", "user,item,rating\na,x,five\nb,x,good\n");
    let run = etl(&d, "bad.csv", &["--min-interactions", "1"]).fails_with(1);
    assert!(
        run.stderr
            .contains("no ratings left after cleaning `bad.csv`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("bad_rating 2"), "{}", run.stderr);
}

#[test]
fn unmappable_csv_lists_the_columns_found() {
    let d = Dir::new();
    d.write("r.csv", "customer,product,stars\na,x,5\n");
    let run = etl(&d, "r.csv", &[]).fails_with(1);
    assert!(
        run.stderr.contains("no `user` column found"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("`customer`, `product`, `stars`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--columns user="), "{}", run.stderr);
}

#[test]
fn k_core_removing_everything_suggests_a_lower_n() {
    let d = Dir::new();
    d.write("r.csv", "user,item,rating\na,x,5\nb,y,4\n");
    let run = etl(&d, "r.csv", &["--min-interactions", "5"]).fails_with(1);
    assert!(
        run.stderr.contains("5-core filter removed every rating"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("lower `--min-interactions`"),
        "{}",
        run.stderr
    );
}

#[test]
fn unwritable_output_is_reported_and_earlier_outputs_survive_failures() {
    let d = Dir::new();
    d.write("r.csv", "user,item,rating\na,x,5\nb,x,4\n");
    etl(&d, "r.csv", &["--min-interactions", "1"]).ok();
    let before = std::fs::read(d.join("out/interactions.parquet")).unwrap();
    let summary = std::fs::read(d.join("out/etl_summary.json")).unwrap();
    // A failing ETL into the same folder leaves it as it was.
    d.write("bad.csv", "user,item,rating\na,x,9\n");
    etl(
        &d,
        "bad.csv",
        &["--min-interactions", "1", "--rating-range", "1..5"],
    )
    .fails_with(1);
    assert_eq!(
        before,
        std::fs::read(d.join("out/interactions.parquet")).unwrap()
    );
    assert_eq!(
        summary,
        std::fs::read(d.join("out/etl_summary.json")).unwrap()
    );
    let leftovers: Vec<_> = std::fs::read_dir(d.join("out"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.path().is_dir())
        .collect();
    // The `.recflow.lock` file stays: it is the folder's lock, not a leftover.
    assert!(
        leftovers.is_empty(),
        "no staging folder left behind: {leftovers:?}"
    );
    // A path under a regular file cannot be created, even as root.
    d.write("afile", "x");
    let run = d
        .run(&[
            "etl",
            "--input",
            "r.csv",
            "--output",
            "afile/sub",
            "--min-interactions",
            "1",
        ])
        .fails_with(1);
    assert!(
        run.stderr.contains("cannot write to `afile/sub`"),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let d = Dir::new();
    d.run(&["etl", "--min-interactions", "lots"]).fails_with(2);
    d.run(&["no-such-command"]).fails_with(2);
}

#[test]
fn outputs_are_readable_by_pandas_pyarrow_and_polars() {
    let Some(py) = python_or_skip("outputs_are_readable_by_pandas_pyarrow_and_polars") else {
        return;
    };
    let d = Dir::new();
    d.write_gz("r.json.gz", REVIEWS);
    etl(&d, "r.json.gz", &["--min-interactions", "1"]).ok();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_parquet_readers.py");
    let out = std::process::Command::new(py)
        .arg(script)
        .arg(d.join("out"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    for reader in ["pandas", "pyarrow", "polars"] {
        assert_eq!(v[reader]["interactions"], 5, "{reader}");
        assert_eq!(v[reader]["user_map"], 3, "{reader}");
        assert_eq!(v[reader]["popular_first"], "B1", "{reader}");
    }
}

#[test]
fn etl_reads_standard_input_and_a_named_pipe() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let d = Dir::new();
    let gz = std::fs::read(d.write_gz("r.json.gz", REVIEWS)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_recflow"))
        .current_dir(d.path())
        .args(["etl", "--input", "-", "--format", "json"])
        .args(["--min-interactions", "1", "--output", "out"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&gz).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let s = d.json("out/etl_summary.json");
    assert_eq!(s["input"]["path"], "-");
    assert_eq!(s["ratings"], 5);

    let fifo = d.join("pipe");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, REVIEWS).unwrap())
    };
    let run = etl(&d, "pipe", &["--format", "json", "--min-interactions", "1"]).ok();
    writer.join().unwrap();
    assert_eq!(d.json("out/etl_summary.json")["input"]["path"], "pipe");
    // The copies are gone once the ETL ends.
    let left: Vec<_> = std::fs::read_dir(d.join("out"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".staging"))
        .collect();
    assert!(left.is_empty(), "{left:?} {}", run.stderr);
}

#[test]
fn a_file_size_limit_is_a_named_write_error_and_earlier_outputs_survive() {
    let d = Dir::new();
    d.generate(3000, 1500, 60000, 3);
    etl(&d, "r.json.gz", &["--min-interactions", "1"]).ok();
    let before = std::fs::read(d.join("out/interactions.parquet")).unwrap();
    // `ulimit -f 64`: files of at most 64 KiB; the interactions file is larger.
    let out = std::process::Command::new("bash")
        .current_dir(d.path())
        .args([
            "-c",
            "ulimit -f 64 && exec \"$0\" etl --input r.json.gz --output out --min-interactions 2",
            env!("CARGO_BIN_EXE_recflow"),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "not killed by SIGXFSZ (153)\n{stderr}"
    );
    assert!(
        stderr.contains("File too large") && stderr.contains(".parquet"),
        "the error names the file and the cause\n{stderr}"
    );
    assert_eq!(
        before,
        std::fs::read(d.join("out/interactions.parquet")).unwrap()
    );
    let staging: Vec<_> = std::fs::read_dir(d.join("out"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert!(staging.is_empty(), "no staging folder left: {staging:?}");
}

#[test]
fn items_meta_in_the_snap_2014_literal_layout_joins_titles_into_the_item_map() {
    // Issue rule: both SNAP layouts parse, safely; a bad file names its line and leaves the
    // earlier outputs as they were.
    let d = Dir::new();
    d.write_gz("r.json.gz", REVIEWS);
    d.write_gz(
        "meta_Electronics.json.gz",
        concat!(
            r#"{'asin': 'B1', 'title': "Men's <script>alert('x')</script> cable", 'imUrl': 'http://img/b1.jpg', 'categories': [['Electronics', 'Cables']]}"#,
            "\n",
            r#"{'asin': 'B9', 'title': 'not rated'}"#,
            "\n"
        ),
    );
    let run = etl(
        &d,
        "r.json.gz",
        &[
            "--min-interactions",
            "1",
            "--items-meta",
            "meta_Electronics.json.gz",
        ],
    )
    .ok();
    assert!(
        run.stdout
            .contains("items meta 1 of 2 items with a title, 1 with a category, 1 with an image URL (2 described"),
        "{}",
        run.stdout
    );
    let ds = recflow::data::store::load_dataset(&d.join("out")).unwrap();
    let meta = recflow::data::store::read_item_meta(&d.join("out"))
        .unwrap()
        .unwrap();
    let b1 = ds.item_ids.iter().position(|i| i == "B1").unwrap();
    let b2 = ds.item_ids.iter().position(|i| i == "B2").unwrap();
    assert_eq!(
        meta[b1].title.as_deref(),
        Some("Men's <script>alert('x')</script> cable")
    );
    assert_eq!(meta[b1].category.as_deref(), Some("Electronics > Cables"));
    assert_eq!(meta[b1].image_url.as_deref(), Some("http://img/b1.jpg"));
    assert_eq!(meta[b2], recflow::data::meta::ItemMeta::default());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("out/etl_summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["items_meta"]["with_title"], 1, "{summary}");

    let before = std::fs::read(d.join("out/item_map.parquet")).unwrap();
    d.write(
        "bad_meta.json",
        "{'asin': 'B1'}\n{'asin': open('/etc/passwd')}\n",
    );
    let bad = etl(&d, "r.json.gz", &["--items-meta", "bad_meta.json"]).fails_with(1);
    assert!(
        bad.stderr.contains("bad_meta.json` line 2"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("hint:"), "{}", bad.stderr);
    assert_eq!(
        std::fs::read(d.join("out/item_map.parquet")).unwrap(),
        before
    );
    // Without metadata the item map has no metadata columns.
    etl(&d, "r.json.gz", &["--min-interactions", "1"]).ok();
    assert!(recflow::data::store::read_item_meta(&d.join("out"))
        .unwrap()
        .is_none());
}
