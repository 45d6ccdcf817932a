//! Every built-in default, written once. Commands, the spec and the environment fall back here.

/// The raw reviews file the ETL reads without `--input` (`RAW_REVIEWS_PATH`).
pub const INPUT: &str = "data/raw/reviews_electronics.json.gz";
/// Where `RAW_REVIEWS_PATH` is downloaded from (`RAW_REVIEWS_URL`).
pub const INPUT_URL: &str =
    "https://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_Electronics_5.json.gz";
/// `recflow etl`'s output folder and the processed data other commands read.
pub const PROCESSED: &str = "data/processed";
/// Where `recflow run` keeps one processed copy per input fingerprint.
pub const PROCESSED_ROOT: &str = "data/processed";
/// k-core threshold (`MIN_INTERACTIONS`).
pub const MIN_INTERACTIONS: usize = 5;
pub const LOG_LEVEL: &str = "INFO";
pub const ENVIRONMENT: &str = "local";
pub const TRACKING_URI: &str = "file:./mlruns";
/// The local store results are spooled to when a server goes away mid-run.
pub const SPOOL_STORE: &str = "mlruns";
/// Where a trained model is saved.
pub const MODEL_DIR: &str = "artifacts/model";
/// Local run summaries (`mlflow_run_id.txt`).
pub const METRICS_DIR: &str = "artifacts/metrics";
/// The experiment `train` and `train-als` log to when only `--tracking-uri` is given.
pub const TRAIN_EXPERIMENT: &str = "recflow-train";
/// Models downloaded from runs (`serve --run-id`, `deploy`).
pub const RUN_MODELS_DIR: &str = "artifacts/runs";
pub const EDA_OUT: &str = "reports/eda";
pub const SAMPLE: &str = "data/raw/sample_reviews.json.gz";

pub const K: usize = 10;
pub const TEST_FRACTION: f64 = 0.2;
/// Share of the training split held out for selection by `train` and `run`.
pub const VALIDATION_FRACTION: f64 = 0.1;
/// `train-als` fits one model and needs no selection split.
pub const VALIDATION_FRACTION_SINGLE: f64 = 0.0;
pub const SEED: u64 = 42;
pub const SAMPLE_FRACTION: f64 = 1.0;
pub const LEAVE_N: usize = 1;

/// Spark's ALS defaults, `train-als`'s single model.
pub const RANK: usize = 10;
pub const REG: f64 = 0.1;
pub const ALPHA: f64 = 1.0;
pub const CG_STEPS: usize = 3;

/// The default explicit grid of `train` and of a spec without `[grid]`: reg on a log scale wide
/// enough that sparse review data (Epinions: best at 0.3 to 1) and dense data (MovieLens 100K:
/// 0.1) both select inside it, and the biases' own damping constant, so a large factor reg
/// does not flatten the biases (docs/benchmarks.md, "Epinions").
pub const GRID_RANKS: &[usize] = &[10, 32, 64];
pub const GRID_REGS: &[f64] = &[0.03, 0.1, 0.3, 1.0];
pub const GRID_REG_BIAS: &[f64] = &[1.0, 5.0];
/// Implicit feedback keeps the grid it was measured with (MovieLens 100K, citeulike-a).
pub const GRID_RANKS_IMPLICIT: &[usize] = &[32, 50, 64];
pub const GRID_REGS_IMPLICIT: &[f64] = &[0.05, 0.1, 0.2];
/// Implicit feedback: measured on MovieLens 100K, alpha at or below 1 ranks best with
/// count-scaled reg.
pub const GRID_ALPHAS_IMPLICIT: &[f64] = &[0.25, 0.5, 1.0];

/// The most fits a search may make unless raised (`--max-runs`).
pub const MAX_RUNS: usize = 1000;

/// Top-K bounds of `recommend`.
pub const MAX_K: usize = 100_000;

/// Server.
pub const HOST: &str = "127.0.0.1";
pub const PORT: u16 = 8000;
pub const REQUEST_TIMEOUT_SECONDS: u64 = 10;
pub const BODY_LIMIT: usize = 1 << 20;
pub const DEPLOY_SERVER: &str = "http://127.0.0.1:8000";
