# recflow: `make run` and `make test` do all set-up on a fresh Debian machine.
.DEFAULT_GOAL := help
SHELL := /bin/bash

CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python
BIN := target/release/recflow
SAMPLE := data/raw/sample_reviews.json.gz
SAMPLE_META := data/raw/sample_meta.json.gz

.PHONY: help setup venv venv-peers venv-myfm test-spark build run ui ui-check demo-check eda notebook test fault-test lint fmt bench bench-etl bench-als bench-quality bench-tracking bench-runs bench-serve bench-page clean

help: ## Show the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

setup: ## Install the Debian packages the build needs (libopenblas-dev, pkg-config, libssl-dev) when missing
	@scripts/setup-system.sh

venv: $(VENV)/.installed ## Python venv with the pinned packages the compatibility tests use

$(VENV)/.installed: scripts/requirements-test.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r scripts/requirements-test.txt
	touch $@

build: setup ## Build the release binary (tests use the same profile)
	$(CARGO) build --release

run: build ## Run experiments/quickstart.toml end to end on the generated sample (no network)
	@[ -f $(SAMPLE) ] && [ -f $(SAMPLE_META) ] || $(BIN) generate --out $(SAMPLE) --items-meta $(SAMPLE_META)
	$(BIN) run experiments/quickstart.toml
	$(BIN) recommend --model artifacts/model -k 5 --user "$$(zcat $(SAMPLE) | head -1 | sed -E 's/.*"reviewerID": "([^"]+)".*/\1/')"

ui-check: run venv ## MLflow's UI on the quickstart's runs in headless Chromium: checks each page, screenshots in reports/ui/
	@command -v chromium >/dev/null || { echo "installing Debian packages: chromium"; apt-get install -y -q chromium >/dev/null; }
	$(PY) scripts/ui_check.py mlruns reports/ui quickstart

$(VENV)/.ui-installed: scripts/requirements-ui.txt | $(VENV)/.installed
	$(VENV)/bin/pip install -q -r scripts/requirements-ui.txt
	touch $@

demo-check: run $(VENV)/.ui-installed ## The demo page of `serve` driven in headless Chromium (keyboard, no-JS view): screenshots in reports/demo/
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { echo "installing Debian packages: chromium chromium-driver"; apt-get install -y -q chromium chromium-driver >/dev/null; }
	$(PY) scripts/demo_check.py $(BIN) artifacts/model reports/demo

ui: venv ## Open the MLflow UI on the file store (http://127.0.0.1:5000)
	MLFLOW_ALLOW_FILE_STORE=true $(VENV)/bin/mlflow ui --backend-store-uri ./mlruns --host 127.0.0.1 --port 5000

eda: build ## Data report of the processed sample (reports/eda/report.html)
	$(BIN) eda --input $$(ls -d data/processed/quickstart-* | head -1) --out reports/eda

notebook: venv ## Execute notebooks/01_data_overview.ipynb headless on the processed sample (after make run)
	$(VENV)/bin/pip install -q -r scripts/requirements-notebook.txt
	mkdir -p reports
	RECFLOW_DATA_DIR=$$(ls -d $(CURDIR)/data/processed/quickstart-* | head -1) $(VENV)/bin/jupyter nbconvert \
	    --to notebook --execute notebooks/01_data_overview.ipynb --output-dir reports --output 01_data_overview.executed

test: setup venv ## Run every test (unit, integration, Python compatibility)
	RECFLOW_REQUIRE_PYTHON=1 $(CARGO) test --release

# The fault-injection and concurrency tests, with more stop signals than `make test` sends.
FAULT_TESTS = faults:: sigterm concurrent staging stale dropped not_json never_answers timeout \
    a_500 a_429 server_gone comes_back failed_reload model_swap idle_connections unwritable \
    dies_mid_run refused_connection failure_after_training file_size_limit
fault-test: setup venv ## Fault injection: 40 stops at random moments, dying servers, concurrent writers, idle sockets
	RECFLOW_REQUIRE_PYTHON=1 RECFLOW_FAULT_KILLS=40 $(CARGO) test --release --no-fail-fast -- $(FAULT_TESTS)

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt

bench: bench-etl bench-als bench-quality bench-tracking bench-serve bench-runs ## Run every benchmark

bench-etl: build venv-peers ## ETL on an Electronics-size generated file vs polars-python and PySpark
	python3 scripts/bench_etl.py

bench-als: build venv venv-peers ## ALS fit time and accuracy vs Spark MLlib and implicit, top-K scoring, BLAS rate
	python3 scripts/bench_als.py

bench-quality: build venv-peers venv-myfm ## Every family selected on validation vs Surprise, Spark, implicit, EASE/kNN, myFM on 4 data sets
	python3 scripts/bench_quality.py

bench-tracking: build venv ## MLflow logging through recflow vs MLflow's Python client and a minimal HTTP client
	python3 scripts/bench_tracking.py 50

bench-runs: build venv ## runs list/compare over 500 runs vs mlflow.search_runs (file store, server); bootstrap vs evaluation time
	python3 scripts/bench_runs.py 500 3

bench-page: build venv-peers ## The demo page's server time beside the JSON answer's, same users, Electronics-size model
	python3 scripts/bench_serve.py --page-only --page 300

bench-serve: build venv-peers ## HTTP serving under load (wrk) vs the FastAPI + numpy peer, and a 60 s soak
	@command -v wrk >/dev/null || (echo "installing wrk" && apt-get install -y -qq wrk >/dev/null)
	python3 scripts/bench_serve.py --duration 20 --soak 60

clean: ## Remove build outputs, processed data and the venv
	$(CARGO) clean
	rm -rf $(VENV) data/processed/* artifacts

venv-peers: $(VENV)-peers/.installed ## Python venv with the peer systems benchmarks compare against

$(VENV)-peers/.installed: ../shared/peers/requirements.txt
	python3 -m venv $(VENV)-peers
	$(VENV)-peers/bin/pip install -q --upgrade pip
	$(VENV)-peers/bin/pip install -q -r ../shared/peers/requirements.txt
	touch $@

venv-myfm: $(VENV)-myfm/.installed ## Python venv with myFM (the Bayesian peer of bench-quality; not among the pinned peers)

$(VENV)-myfm/.installed:
	python3 -m venv $(VENV)-myfm
	$(VENV)-myfm/bin/pip install -q myfm==0.4.0 scikit-learn==1.6.1 pandas==2.2.3 numpy==2.4.6 scipy==1.17.1
	touch $@

test-spark: build venv-peers ## Check that PySpark's ALSModel.load reads recflow's saved models
	RECFLOW_TEST_SPARK=1 $(CARGO) test --release --test it spark_
