//! Command-line types. Only clap derive types live here; their doc comments are the help text.

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::data::format::{ColumnSpec, InputFormat};
use crate::data::split::SplitKind;
use crate::model::als::{Confidence, RegScaling, Solver, Weighting};
use crate::model::family::FamilyName;
use crate::names::Named;
pub use crate::settings::env::LogLevel;

/// Domain enums are clap value enums through their own names (no mirror enums here).
macro_rules! value_enums {
    ($($t:ty),*) => {$(
        impl ValueEnum for $t {
            fn value_variants<'a>() -> &'a [Self] {
                <$t as Named>::ALL
            }
            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(PossibleValue::new(self.name()))
            }
        }
    )*};
}
value_enums!(
    InputFormat,
    SplitKind,
    Solver,
    RegScaling,
    Confidence,
    Weighting,
    FamilyName,
    LogLevel
);

/// recflow: recommender-system experiments from the command line.
///
/// ETL of review data into Parquet, a synthetic data generator, and more as they land.
/// Configuration comes from the command line, then the environment, then `.env`, then defaults
/// (`recflow config` shows what is in force).
#[derive(Debug, Parser)]
#[command(
    name = "recflow",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Log level: error, warn, info, debug or trace [default: LOG_LEVEL, else info].
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
    /// Print only warnings, errors and results.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Never draw progress bars (they are drawn only on a terminal anyway).
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Print results as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print the settings the command resolved (command line, spec, environment, defaults) and
    /// exit without doing anything.
    #[arg(long, global = true)]
    pub show_settings: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Clean, k-core filter and index ratings into Parquet.
    ///
    /// Reads JSON lines (plain or gzipped), CSV, TSV or Parquet; writes interactions.parquet,
    /// user_map.parquet, item_map.parquet, popular_items.parquet and etl_summary.json.
    ///
    /// Example:
    ///   recflow etl --input data/raw/sample_reviews.json.gz --min-interactions 5
    ///   recflow etl --input ml-100k.inter --min-interactions 1 --output data/processed/ml100k
    #[command(verbatim_doc_comment)]
    Etl(EtlArgs),
    /// Write synthetic reviews in the Amazon (SNAP) layout, gzipped.
    ///
    /// Long-tailed users and items (each with at least 5 reviews), ratings from a planted
    /// low-rank model; identical bytes for the same seed.
    ///
    /// Example:
    ///   recflow generate --out data/raw/sample_reviews.json.gz --users 5000 --items 2000 --ratings 60000
    #[command(verbatim_doc_comment)]
    Generate(GenerateArgs),
    /// Download the raw reviews file (RAW_REVIEWS_URL to RAW_REVIEWS_PATH), resuming a partial one.
    ///
    /// Example:
    ///   recflow download
    ///   recflow download --url http://127.0.0.1:8080/reviews.json.gz --out data/raw/r.json.gz
    #[command(verbatim_doc_comment)]
    Download(DownloadArgs),
    /// Train one ALS model on the processed data and save it (artifacts/model).
    ///
    /// Runs the ETL of RAW_REVIEWS_PATH first when data/processed is empty (it never downloads).
    /// Defaults follow Spark: rank 10, reg 0.1, alpha 1.0, 10 iterations, all ratings. Reports the
    /// test metrics.
    ///
    /// Example:
    ///   recflow train-als --rank 50 --reg 0.1 --alpha 1.0 --maxiter 10 --sample-fraction 0.2 --sample-seed 42
    ///   recflow train-als --implicit --solver cg --rank 64 --reg 0.05 --alpha 10
    #[command(verbatim_doc_comment, visible_alias = "train_als")]
    TrainAls(TrainAlsArgs),
    /// Search one model family (ALS by default), select on a validation split, save the winner.
    ///
    /// ALS's default grid: rank 10, 32, 64 x reg 0.03, 0.1, 0.3, 1 x reg_bias 1, 5 (reg_bias only
    /// with the default reg; implicit: rank 32, 50, 64 x reg 0.05, 0.1, 0.2 x alpha 0.25, 0.5, 1).
    /// Any family takes `--param NAME=VALUE` and `--grid NAME=V1,V2`.
    /// Selection: lowest RMSE for rating models, highest NDCG@K otherwise; ties by Precision@K.
    ///
    /// Example:
    ///   recflow train
    ///   recflow train --rank 16,32 --reg 0.05,0.1 --implicit --alpha 1,10,40
    ///   recflow train --family ease --grid lambda=100,500,1000
    ///   recflow train --family item_knn --param neighbors=200 --select ndcg_at_10
    #[command(verbatim_doc_comment)]
    Train(TrainArgs),
    /// Recompute a saved model's metrics on a split of the data it was trained on.
    ///
    /// The data folder, split and K default to the model's own (from its metadata.json);
    /// `--test-file` evaluates on a file you split yourself.
    ///
    /// Example:
    ///   recflow eval --model artifacts/model
    ///   recflow eval --model artifacts/model -k 20 --relevance-threshold 4
    #[command(verbatim_doc_comment)]
    Eval(EvalCmdArgs),
    /// Top-K recommendations of a saved model, for one user or for every user.
    ///
    /// Items the user already rated are excluded; a user the model has never seen gets the most
    /// popular items, and the output says so.
    ///
    /// Example:
    ///   recflow recommend --model artifacts/model --user A2SUAM1J3GNN3B -k 10
    ///   recflow recommend --model artifacts/model --all --out recs.parquet
    #[command(verbatim_doc_comment)]
    Recommend(RecommendArgs),
    /// Run an experiment spec end to end: ETL, split, every model entry's search, evaluation,
    /// selection, the leaderboard, MLflow logging.
    ///
    /// Logs a parent run with one nested run per configuration and one final run per entry to the
    /// tracking URI (a file store that `mlflow ui` reads, or an MLflow server), and saves the
    /// winner on the validation split.
    ///
    /// Example:
    ///   recflow run experiments/quickstart.toml
    ///   recflow run experiments/movielens_100k.toml --set data.input=ml-100k.inter --set grid.rank=[32,64]
    ///   recflow run experiments/quickstart.toml --set models.ease.grid.lambda=[100,1000]
    ///   recflow run experiments/quickstart.toml --tracking-uri http://127.0.0.1:5000
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// List MLflow experiments in the tracking store.
    ///
    /// Example:
    ///   recflow experiments list
    ///   recflow experiments list --tracking-uri http://127.0.0.1:5000 --json
    #[command(verbatim_doc_comment)]
    Experiments {
        #[command(subcommand)]
        command: ExperimentsCommand,
    },
    /// Find, show and compare runs, with MLflow's search grammar.
    ///
    /// Example:
    ///   recflow runs list --experiment quickstart --filter "metrics.rmse < 0.95 and params.rank = '16'"
    ///   recflow runs compare RUN_ID RUN_ID
    ///   recflow runs best --experiment quickstart --metric test_ndcg_at_10
    #[command(verbatim_doc_comment)]
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Copy runs from a file store to an MLflow server (params, histories, tags, artifacts, nesting).
    ///
    /// A second sync copies nothing new.
    ///
    /// Example:
    ///   recflow sync --from file:./mlruns --to http://127.0.0.1:5000 --experiment quickstart
    #[command(verbatim_doc_comment)]
    Sync(SyncArgs),
    /// Describe processed data: exact statistics, plots (PNG and SVG) and a self-contained HTML report.
    ///
    /// Example:
    ///   recflow eda
    ///   recflow eda --input data/processed --out reports/eda --json
    #[command(verbatim_doc_comment)]
    Eda(EdaArgs),
    /// Serve a model's recommendations over HTTP (cold-start users get popular items).
    ///
    /// Endpoints: /health, /ready, /v1/users/{id}/recommendations, POST /v1/recommendations,
    /// /v1/items/{id}/similar, /v1/popular, /v1/model, /metrics, /openapi.json, POST /admin/reload
    /// (bearer token from RECFLOW_ADMIN_TOKEN). SIGHUP reloads the model; SIGTERM stops gracefully.
    ///
    /// Example:
    ///   recflow serve --model artifacts/model --port 8000
    ///   recflow serve --run-id 58dbba3dad274c55a06cbe4dbd863f4f --tracking-uri file:./mlruns
    #[command(verbatim_doc_comment)]
    Serve(ServeArgs),
    /// Make a running server load the model of an MLflow run (through POST /admin/reload).
    ///
    /// Example:
    ///   RECFLOW_ADMIN_TOKEN=secret recflow deploy --run-id RUN_ID --server http://127.0.0.1:8000
    #[command(verbatim_doc_comment)]
    Deploy(DeployArgs),
    /// Print the resolved configuration and where each value came from (secrets masked).
    ///
    /// Example:
    ///   recflow config
    ///   recflow config --json
    #[command(verbatim_doc_comment)]
    Config,
}

#[derive(Debug, Args, Clone)]
pub struct EtlArgs {
    /// Input file [default: RAW_REVIEWS_PATH].
    #[arg(long, short)]
    pub input: Option<PathBuf>,
    /// Input format [default: from the file extension].
    #[arg(long)]
    pub format: Option<InputFormat>,
    /// Column mapping: `user=..,item=..,rating=..,timestamp=..`, names or 0-based positions.
    #[arg(long, value_name = "MAP")]
    pub columns: Option<ColumnSpec>,
    /// The CSV/TSV file has a header row [default: detected].
    #[arg(long, overrides_with = "no_header")]
    pub header: bool,
    /// The CSV/TSV file has no header row.
    #[arg(long)]
    pub no_header: bool,
    /// Keep only users and items with at least N ratings [default: MIN_INTERACTIONS, else 5].
    #[arg(long, value_name = "N")]
    pub min_interactions: Option<usize>,
    /// Ratings kept, inclusive: `1..5`, `0.5..5`, `0..inf` for counts [default: inferred: a
    /// star scale when every rating is on a 0.5 grid within 0..10 (its min..max), counts when
    /// they are non-negative integers].
    #[arg(long, value_name = "MIN..MAX")]
    pub rating_range: Option<crate::data::etl::RatingRange>,
    /// Fail on the first malformed line instead of skipping and counting it.
    #[arg(long)]
    pub strict: bool,
    /// Skip (and count) input lines longer than N bytes; with `--strict`, fail on them
    /// [default: 16777216].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_line_bytes: Option<u64>,
    /// Item metadata to join into the item map (title, category, image URL): SNAP's Amazon
    /// `meta_<Category>.json.gz` (2014 Python-literal or 2018 JSON lines), or a CSV/TSV/Parquet
    /// table with `item_id` and `title` (`category`, `image_url` optional).
    #[arg(long, value_name = "FILE")]
    pub items_meta: Option<PathBuf>,
    /// Output folder.
    #[arg(long, short, default_value = crate::settings::defaults::PROCESSED)]
    pub output: PathBuf,
    /// Download the input from RAW_REVIEWS_URL first when it is missing.
    #[arg(long)]
    pub download: bool,
}

#[derive(Debug, Args, Clone)]
pub struct GenerateArgs {
    /// Output file (gzipped JSON lines).
    #[arg(long, short, default_value = crate::settings::defaults::SAMPLE)]
    pub out: PathBuf,
    /// Number of reviewers.
    #[arg(long, default_value_t = 5_000)]
    pub users: usize,
    /// Number of products.
    #[arg(long, default_value_t = 2_000)]
    pub items: usize,
    /// Number of reviews (at least 5 per user and per item).
    #[arg(long, default_value_t = 60_000)]
    pub ratings: usize,
    /// Random seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Also write matching product metadata here (SNAP 2014 layout, gzipped JSON lines: titles
    /// by genre, categories, example.com image URLs), for `etl --items-meta`.
    #[arg(long, value_name = "FILE")]
    pub items_meta: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct DownloadArgs {
    /// Source URL [default: RAW_REVIEWS_URL].
    #[arg(long)]
    pub url: Option<String>,
    /// Destination [default: RAW_REVIEWS_PATH].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

impl EtlArgs {
    pub fn has_header(&self) -> Option<bool> {
        match (self.header, self.no_header) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

/// Where the processed data is.
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// Folder with the ETL outputs [default: data/processed; for a model, the folder it was
    /// trained on].
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Sampling and splitting, shared by every command that evaluates.
#[derive(Debug, Args, Clone)]
pub struct SplitArgs {
    /// Share of ratings to keep, sampled before the split [default: 1.0; for a model, its own].
    #[arg(long)]
    pub sample_fraction: Option<f64>,
    /// Seed of the sample [default: 42; for a model, its own].
    #[arg(long)]
    pub sample_seed: Option<u64>,
    /// Split strategy [default: random; for a model, its own].
    #[arg(long, value_enum)]
    pub split: Option<SplitKind>,
    /// For `--split leave_last_n`: how many of each user's newest ratings go to test [default: 1].
    #[arg(long)]
    pub leave_n: Option<usize>,
    /// Share of ratings in the test split [default: 0.2; for a model, its own].
    #[arg(long)]
    pub test_fraction: Option<f64>,
    /// Seed of the split and of the models [default: 42; for a model, its own].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Use this file (user, item, rating with the original ids; any format the ETL reads) as the
    /// test split, and all processed data as training data.
    #[arg(long, value_name = "FILE")]
    pub test_file: Option<PathBuf>,
}

/// Evaluation options shared by the commands that evaluate.
#[derive(Debug, Args, Clone)]
pub struct EvalArgs {
    /// Cut-off K of the ranking metrics [default: 10; for a model, its own].
    #[arg(short, long)]
    pub k: Option<usize>,
    /// Count a test rating as relevant only when it is at least this (off by default).
    #[arg(long)]
    pub relevance_threshold: Option<f32>,
}

/// Model options shared by `train-als` and `train`.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Implicit feedback (confidence 1 + alpha * rating).
    #[arg(long)]
    pub implicit: bool,
    /// Row solver; `gibbs` samples the posterior instead (Bayesian ALS, explicit only)
    /// [default: cholesky].
    #[arg(long, value_enum)]
    pub solver: Option<Solver>,
    /// Sweeps discarded before samples are kept (with `--solver gibbs`) [default: a fifth of
    /// `--maxiter`].
    #[arg(long)]
    pub burn_in: Option<usize>,
    /// Samples kept after burn-in, evenly spaced (with `--solver gibbs`); the model's factors
    /// have rank x samples columns [default: 50].
    #[arg(long)]
    pub samples: Option<usize>,
    /// Add each user's rated items and each item's raters as features, SVD++-style (with
    /// `--solver gibbs`).
    #[arg(long)]
    pub rated_sets: bool,
    /// Conjugate-gradient steps per row (with `--solver cg`) [default: 3].
    #[arg(long)]
    pub cg_steps: Option<usize>,
    /// Skip the learning curves: the training objective and validation metrics after each
    /// iteration (Spark and implicit compute neither; about a tenth of an iteration).
    #[arg(long, alias = "no-training-loss")]
    pub no_curves: bool,
    /// Learn global, user and item biases [default: on for explicit, off for implicit].
    #[arg(long, overrides_with = "no_biases")]
    pub biases: bool,
    /// No biases.
    #[arg(long)]
    pub no_biases: bool,
    /// Regularization scaling: `count` (lambda x each row's rating count, Spark) or `none`
    /// [default: count].
    #[arg(long, value_enum)]
    pub reg_scaling: Option<RegScaling>,
    /// The biases' own regularization: a damping constant, b = sum of residuals / (reg_bias + n),
    /// never scaled by the count [default: the factors' reg, scaled alike].
    #[arg(long, allow_negative_numbers = true)]
    pub reg_bias: Option<f64>,
    /// Implicit: confidence `linear` (1 + alpha * r) or `log` (1 + alpha * ln(1 + r / epsilon))
    /// [default: linear].
    #[arg(long, value_enum)]
    pub confidence: Option<Confidence>,
    /// Implicit, `--confidence log`: where the log bends [default: 1].
    #[arg(long)]
    pub epsilon: Option<f64>,
    /// Implicit: weight the ratings first, `bm25` or `tfidf` as benfred/implicit does
    /// [default: none].
    #[arg(long, value_enum)]
    pub weighting: Option<Weighting>,
    /// `--weighting bm25`: K1 [default: 100].
    #[arg(long)]
    pub bm25_k1: Option<f64>,
    /// `--weighting bm25`: B [default: 0.8].
    #[arg(long)]
    pub bm25_b: Option<f64>,
    /// Iterations (sweeps for `--solver gibbs`) [default: 10; 200 for gibbs].
    #[arg(long, alias = "max-iter")]
    pub maxiter: Option<usize>,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub eval: EvalArgs,
    /// Where the model is saved.
    #[arg(long, default_value = crate::settings::defaults::MODEL_DIR)]
    pub model_dir: PathBuf,
}

impl ModelArgs {
    /// `Some(true)` for `--biases`, `Some(false)` for `--no-biases`, else the family's default.
    pub fn biases(&self) -> Option<bool> {
        match (self.biases, self.no_biases) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

/// Logging a training to MLflow: one run with the selected configuration, its test figures,
/// curves and the model.
#[derive(Debug, Args, Clone)]
pub struct TrainLogArgs {
    /// Log the training as one MLflow run to this tracking URI (`file:./mlruns`,
    /// `http://host:5000`) [default: no run; with `--experiment` alone MLFLOW_TRACKING_URI, else
    /// file:./mlruns].
    #[arg(long)]
    pub tracking_uri: Option<String>,
    /// The MLflow experiment of that run [default: recflow-train].
    #[arg(long)]
    pub experiment: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct TrainAlsArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub log: TrainLogArgs,
    /// Number of latent factors [default: 10].
    #[arg(long)]
    pub rank: Option<usize>,
    /// Regularization (lambda) [default: 0.1].
    #[arg(long, allow_negative_numbers = true)]
    pub reg: Option<f64>,
    /// Confidence weight for implicit feedback [default: 1.0].
    #[arg(long, allow_negative_numbers = true)]
    pub alpha: Option<f64>,
    /// Share of the training split held out to report validation metrics per iteration
    /// [default: 0, none].
    #[arg(long)]
    pub validation_fraction: Option<f64>,
}

#[derive(Debug, Args, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub log: TrainLogArgs,
    /// The model family to train.
    #[arg(long, value_enum, default_value = "als")]
    pub family: FamilyName,
    /// A fixed parameter of the family: `--param lambda=500` (repeatable; `recflow train
    /// --family F --help` lists none, see the families in experiments/README.md).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// A searched parameter: `--grid lambda=100,500,1000` (repeatable; every combination).
    #[arg(long = "grid", value_name = "NAME=V1,V2")]
    pub grid: Vec<String>,
    /// ALS ranks to try, comma separated [default: 10,32,64; implicit 32,50,64].
    #[arg(long, value_delimiter = ',')]
    pub rank: Vec<usize>,
    /// ALS regularizations to try [default: 0.03,0.1,0.3,1; implicit 0.05,0.1,0.2].
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub reg: Vec<f64>,
    /// ALS alphas to try (implicit only) [default: 0.25,0.5,1].
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub alpha: Vec<f64>,
    /// Share of the training split held out for selection (0 selects on the test split)
    /// [default: 0.1].
    #[arg(long)]
    pub validation_fraction: Option<f64>,
    /// Selection metric, split-free [default: rmse for rating models, ndcg_at_K otherwise].
    #[arg(long)]
    pub select: Option<String>,
    /// Refuse searches of more fits than this [default: 1000].
    #[arg(long)]
    pub max_runs: Option<usize>,
}

#[derive(Debug, Args, Clone)]
pub struct EvalCmdArgs {
    /// Model folder.
    #[arg(long, default_value = crate::settings::defaults::MODEL_DIR)]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    #[command(flatten)]
    pub eval: EvalArgs,
    /// Also write the split used (train.parquet, test.parquet) into this folder.
    #[arg(long, value_name = "DIR")]
    pub save_split: Option<PathBuf>,
    /// Also write each test user's figures (Parquet: user_id, relevant, the ranking metrics,
    /// pairs, sq_err, abs_err), the layout `recflow run` logs as eval/per_user_test.parquet.
    #[arg(long, value_name = "FILE")]
    pub per_user: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct RecommendArgs {
    /// Model folder.
    #[arg(long, default_value = crate::settings::defaults::MODEL_DIR)]
    pub model: PathBuf,
    /// The user's original id (as in the input data).
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub user: Option<String>,
    /// Score every user the model knows (Spark's recommendForAllUsers).
    #[arg(long, requires = "out")]
    pub all: bool,
    /// Parquet output for `--all` (user_id, rank, item_id, score).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// How many items.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Include items the user already rated.
    #[arg(long)]
    pub include_seen: bool,
    /// Name, per item, the user's training items that weigh most in its score (ALS, item-kNN,
    /// EASE).
    #[arg(long, conflicts_with = "all")]
    pub explain: bool,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// The experiment spec (TOML).
    pub spec: PathBuf,
    /// Override a spec value: `section.key=value` (TOML value), repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Tracking URI [default: the spec's, else MLFLOW_TRACKING_URI, else file:./mlruns].
    #[arg(long)]
    pub tracking_uri: Option<String>,
    /// Register the best model under this name in the server's Model Registry. The alias
    /// `champion` moves to it only when it beats the current champion on the selection metric's
    /// test value, evaluated on the same test split.
    #[arg(long, value_name = "NAME")]
    pub register: Option<String>,
    /// With `--register`: move the `champion` alias even when the new model does not beat it.
    #[arg(long, requires = "register")]
    pub force: bool,
    /// Refuse searches of more fits than this [default: the spec's `experiment.max_runs`, else
    /// 1000].
    #[arg(long)]
    pub max_runs: Option<usize>,
    /// Continue the latest run of this spec on the same data: configurations it finished are not
    /// fitted again (an interrupted or widened search goes on where it stopped).
    #[arg(long)]
    pub resume: bool,
    /// Do not sample CPU and memory while models fit (MLflow's `system/` metrics).
    #[arg(long)]
    pub no_system_metrics: bool,
    /// Which final models become MLflow LoggedModels: the winner's, or every entry's.
    #[arg(long, value_enum, default_value_t = LogModels::Best)]
    pub log_models: LogModels,
}

/// Which final models `recflow run` logs to MLflow as models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogModels {
    /// The winner's (the model `artifacts/model` holds).
    Best,
    /// Every entry's final model, each on its own final run.
    All,
}

/// Where runs are read from, and how tables are printed.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Tracking URI [default: MLFLOW_TRACKING_URI, else file:./mlruns].
    #[arg(long)]
    pub tracking_uri: Option<String>,
    /// Print CSV instead of a table (same as `--format csv`).
    #[arg(long, conflicts_with = "format")]
    pub csv: bool,
    /// Output format: an aligned table, CSV or JSON (full precision, no markers), Markdown or
    /// LaTeX (best values in bold) [default: table; `--json` means json].
    #[arg(long, value_enum)]
    pub format: Option<TableFormat>,
}

/// How `runs` and `experiments` print what they found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    Table,
    Csv,
    Json,
    Md,
    Latex,
}

#[derive(Debug, Subcommand, Clone)]
pub enum ExperimentsCommand {
    /// Active experiments, newest first.
    List(StoreArgs),
}

#[derive(Debug, Subcommand, Clone)]
pub enum RunsCommand {
    /// Runs of an experiment, filtered and ordered with MLflow's search grammar.
    List(RunsListArgs),
    /// One run: params, latest metrics, tags, artifacts, child runs.
    Show {
        /// Run id, or a unique prefix of it.
        run_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Runs side by side: differing params marked, best value of each metric starred; grouped
    /// (mean ± sd over repeated configurations) or tested for significance user by user.
    ///
    /// Example:
    ///   recflow runs compare 3f2a9c41 77b0e1d2 --diff-only
    ///   recflow runs compare --children-of 3f2a9c41 --metrics 'val_*' --params rank,reg
    ///   recflow runs compare --children-of 3f2a9c41 --group-by params.rank,params.reg
    ///   recflow runs compare 3f2a9c41 77b0e1d2 c09d4e11 --significance --metric test_ndcg_at_10
    #[command(verbatim_doc_comment)]
    Compare(RunsCompareArgs),
    /// One metric over two params as a grid: `--rows params.rank --cols params.reg`.
    ///
    /// Example:
    ///   recflow runs pivot --experiment quickstart --rows params.rank --cols params.reg --value metrics.val_ndcg_at_10
    #[command(verbatim_doc_comment)]
    Pivot(RunsPivotArgs),
    /// The run with the best value of a metric, in the metric's own direction.
    Best {
        #[arg(long)]
        experiment: String,
        /// A full key: `test_ndcg_at_10` or `metrics.test_ndcg_at_10`.
        #[arg(long)]
        metric: String,
        /// Highest wins, whatever the metric's direction.
        #[arg(long, conflicts_with = "min")]
        max: bool,
        /// Lowest wins, whatever the metric's direction.
        #[arg(long)]
        min: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Args, Clone)]
pub struct RunsListArgs {
    /// Experiment name [default: every experiment].
    #[arg(long)]
    pub experiment: Option<String>,
    /// MLflow filter: `metrics.rmse < 0.95 and params.rank = '64'`, `tags.x LIKE 'a%'`, ...
    #[arg(long)]
    pub filter: Option<String>,
    /// Order: `metrics.rmse ASC`, repeatable [default: newest first].
    #[arg(long)]
    pub order_by: Vec<String>,
    /// At most this many runs (MLflow's `max_results`; `--max` is an older spelling).
    #[arg(long, alias = "max", default_value_t = 100)]
    pub max_results: usize,
    /// Columns: `run_id,name,status,params.rank,metrics.val_rmse`; globs match keys
    /// (`params.*`, `metrics.test_*`) [default: a useful set].
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Only runs without a parent (one line per `recflow run`).
    #[arg(long)]
    pub parents_only: bool,
    /// Runs in the order found, without putting children under their parent.
    #[arg(long)]
    pub flat: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args, Clone)]
pub struct RunsCompareArgs {
    /// Run ids, or unique prefixes of them (8 characters are usually enough).
    pub run_ids: Vec<String>,
    /// Add the child runs of this parent run (id or prefix).
    #[arg(long)]
    pub children_of: Option<String>,
    /// Only the rows whose values differ between the runs.
    #[arg(long)]
    pub diff_only: bool,
    /// Metrics to show, by key or glob (`val_*,test_ndcg_at_10`) [default: all].
    #[arg(long, value_delimiter = ',')]
    pub metrics: Vec<String>,
    /// Params to show, by key or glob (`rank,reg*`) [default: all].
    #[arg(long, value_delimiter = ',')]
    pub params: Vec<String>,
    /// One line per (run, key, value) instead of runs side by side.
    #[arg(long)]
    pub long: bool,
    /// Group runs by these params or tags (`params.rank,params.reg`) and show each metric's
    /// mean ± sd and the count.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["long", "significance"])]
    pub group_by: Vec<String>,
    /// Paired tests over the test users each run shares with the first run: mean difference
    /// with its bootstrap 95% CI, paired t, Wilcoxon signed-rank, effect size, Holm-corrected.
    /// Needs the runs' per-user figures (`eval/per_user_test.parquet`, on final models) and one
    /// test split.
    #[arg(long, conflicts_with = "long")]
    pub significance: bool,
    /// The metric `--significance` compares [default: test_ndcg_at_10, else the first ranking
    /// metric the runs share].
    #[arg(long, requires = "significance")]
    pub metric: Option<String>,
    /// Bootstrap resamples for `--significance`.
    #[arg(long, default_value_t = 1000, requires = "significance")]
    pub resamples: usize,
    /// Bootstrap seed for `--significance`.
    #[arg(long, default_value_t = 42, requires = "significance")]
    pub seed: u64,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args, Clone)]
pub struct RunsPivotArgs {
    /// Experiment name.
    #[arg(long)]
    pub experiment: String,
    /// MLflow filter applied first (`tags.recflow.entry = 'als'`).
    #[arg(long)]
    pub filter: Option<String>,
    /// The param or tag whose values make the rows (`params.rank`).
    #[arg(long)]
    pub rows: String,
    /// The param or tag whose values make the columns (`params.reg`).
    #[arg(long)]
    pub cols: String,
    /// The metric in the cells (`metrics.val_ndcg_at_10`; `metrics.` optional).
    #[arg(long)]
    pub value: String,
    /// How several runs in one cell combine.
    #[arg(long, value_enum, default_value_t = PivotAgg::Mean)]
    pub agg: PivotAgg,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PivotAgg {
    Mean,
    Min,
    Max,
    Count,
}

#[derive(Debug, Args, Clone)]
pub struct SyncArgs {
    /// Source file store.
    #[arg(long, default_value = crate::settings::defaults::TRACKING_URI)]
    pub from: String,
    /// Destination MLflow server.
    #[arg(long)]
    pub to: String,
    /// Only this experiment.
    #[arg(long)]
    pub experiment: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct EdaArgs {
    /// Folder with the ETL outputs [default: data/processed when it has them, else the data of
    /// the model in artifacts/model].
    #[arg(long, short)]
    pub input: Option<PathBuf>,
    /// Output folder for summary.json, the plots and report.html.
    #[arg(long, short, default_value = crate::settings::defaults::EDA_OUT)]
    pub out: PathBuf,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Model folder.
    #[arg(long, default_value = crate::settings::defaults::MODEL_DIR, conflicts_with = "run_id")]
    pub model: PathBuf,
    /// Serve the model logged by this MLflow run (downloaded to artifacts/runs/RUN_ID).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Tracking URI for `--run-id` [default: MLFLOW_TRACKING_URI, else file:./mlruns].
    #[arg(long)]
    pub tracking_uri: Option<String>,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Seconds a request may take before it is answered with 503.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub body_limit: usize,
    /// Scoring threads [default: one per core].
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Show product images on the demo page, by the URLs in the item metadata (the browser
    /// loads them from their hosts; recflow never fetches them).
    #[arg(long)]
    pub show_images: bool,
}

#[derive(Debug, Args, Clone)]
pub struct DeployArgs {
    /// The MLflow run whose model to deploy.
    #[arg(long)]
    pub run_id: String,
    /// The running `recflow serve`.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub server: String,
    /// Tracking URI [default: MLFLOW_TRACKING_URI, else file:./mlruns].
    #[arg(long)]
    pub tracking_uri: Option<String>,
}
