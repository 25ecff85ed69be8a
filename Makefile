# omnibench — every target works on a fresh clone: `make demo` and `make test` do their own set-up.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.omnibench-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONUNBUFFERED := 1
export MPLBACKEND := Agg
# The tiny CPU model runs fastest with one thread per process (and degrades badly with more on a busy machine).
export OMP_NUM_THREADS ?= 1

.PHONY: setup demo study test test-fast lab bench browser lint clean

setup: $(STAMP)

# Re-installs only when pyproject.toml changed (idempotent, quick otherwise).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Debian's Chromium for the JupyterLab browser test (no browser download; needs root/apt).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium install failed: the browser test will be skipped"; \
	  else echo "no /usr/bin/chromium and no root: the browser test will be skipped"; fi; fi

demo: setup
	$(BIN)/omnibench run --config configs/demo.yaml --name demo

# The three-seed demo study (a benchmark, not a test): runs/study_demo/seed{0,1,2}/ + study.json / study.html,
# copied to benchmarks/results/study_demo.json. STUDY_JOBS runs that many seeds at once; keep 1 on 2 cores:
# the base model's perception pre-training uses 2 threads, and two seeds at once on 2 cores made it ~5x slower
# (measured 2026-12-02). A re-run reuses the seeds that completed. See omnibench/study/.
STUDY_JOBS ?= 1
study: setup
	$(BIN)/python -m omnibench.study --config configs/demo.yaml --seeds 0,1,2 --name study_demo --jobs $(STUDY_JOBS)
	mkdir -p benchmarks/results && cp runs/study_demo/study.json benchmarks/results/study_demo.json

test: setup browser
	$(BIN)/python -m pytest -q --durations=15

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not browser"

lab: setup
	$(BIN)/jupyter lab notebooks/

bench: setup
	$(BIN)/python benchmarks/run_all.py

lint: setup
	$(BIN)/ruff check omnibench tests benchmarks

clean:
	rm -rf runs .pytest_cache
