# Harrow — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
# chromium: the report tests load the generated pages in a real (headless) browser.
SYSTEM_PACKAGES := libsqlite3-dev libopenblas-dev libgit2-dev gnuplot-nox pkgconf chromium slurm-wlm munge
BIN := .build/debug

.PHONY: all deps build test bench demo plan clean release models fuzz check-hf check-trainers check-wandb

all: build

# Installs only the system packages that are missing (needs root; apt-get update first).
deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	$(SWIFT) build

# Unit and end-to-end tests, then the fault-injection tests (a gigabyte of trainer output, harrow killed twenty
# times) and the 1,000-run report, each on its own so they cannot slow the timing-bound tests beside them, then the
# Slurm executor on a one-node cluster. The starting models are built with the debug harrow-train (the training core
# is optimised in every configuration; the weights come out byte-identical) for the tests that score them. The
# demo's stories are checked on the store `make demo` writes (`make check-demo`), so the demo sweep runs once.
.PHONY: check-demo demo-seeds
test: deps
	@# The code keeps swift-format's layout (.swift-format: 4 spaces, 140 columns): `make format` applies it.
	$(SWIFT) format lint --strict --recursive --configuration .swift-format Sources Tests Package.swift
	$(SWIFT) build --build-tests
	@$(MAKE) --no-print-directory models TRAIN=$(BIN)/harrow-train
	$(SWIFT) test --skip-build --skip FaultTests --skip SlurmTests --skip aThousandRunNight
	$(SWIFT) test --skip-build --filter FaultTests
	$(SWIFT) test --skip-build --filter aThousandRunNight
	@# A one-node Slurm for the cluster executor's tests, stopped whatever they do (bounded: 10 minutes).
	@scripts/slurm-cluster.sh start .build/slurm-test >/dev/null || exit 1; \
	  status=0; SLURM_CONF=$(CURDIR)/.build/slurm-test/slurm.conf timeout 600 $(SWIFT) test --skip-build --filter SlurmTests || status=$$?; \
	  scripts/slurm-cluster.sh stop .build/slurm-test; exit $$status

.PHONY: format
format:
	$(SWIFT) format --in-place --recursive --configuration .swift-format Sources Tests Package.swift

# The demo's stories, each with its statistics (verdicts; paired tests of the 3H and forgetting differences), on
# the store and report `make demo` wrote. CI runs it right after `make demo`.
DEMO_DB ?= $(CURDIR)/.harrow/harrow.db
check-demo: deps
	@test -f $(DEMO_DB) || { echo "no demo store at $(DEMO_DB): run make demo first"; exit 1; }
	$(SWIFT) build --build-tests
	HARROW_DEMO_DB=$(DEMO_DB) $(SWIFT) test --skip-build --filter DemoStoriesTests

# The demo's evidence for several trainer seeds and slot counts, each sweep in its own store under
# .build/demo-seeds (a few minutes a sweep): SEEDS="1 2 3" PARALLEL="2 1" make demo-seeds.
demo-seeds: release models
	SEEDS="$(or $(SEEDS),1 2 3)" PARALLEL="$(or $(PARALLEL),2 1)" scripts/demo-seeds.sh

bench: deps
	$(SWIFT) package --allow-writing-to-package-directory benchmark --no-progress --format jsonSmallerIsBetter --path .benchmarks
	@cat .benchmarks/*.json 2>/dev/null || true
	$(SWIFT) build -c release --product harrow-train
	.build/release/harrow-train bench --json
	.build/release/harrow-train search-bench --json

# Release binaries for training and sweeps (the trainer is found next to harrow). SwiftPM builds only the last of
# several --product flags, so each product is built on its own.
REL := .build/release
release: deps
	$(SWIFT) build -c release --product harrow-train
	$(SWIFT) build -c release --product harrow

# Fuzzing of every parser of outside input (experiments, dashboards, gates, evalsets, BIG-bench tasks, metrics lines,
# imported trainer logs, scorer answers): FUZZ_RUNS inputs per parser from the seeds in Fuzz/corpus/, reproducible
# from FUZZ_SEED. Fails when an input crashes, hangs (> 1 s of CPU) or grows the worker past 512 MB; those inputs are left in
# Fuzz/findings/TARGET/ (replay one with `harrow-fuzz --reproduce FILE --target TARGET`).
FUZZ_RUNS ?= 1000000
FUZZ_SEED ?= 1
FUZZ_JOBS ?= 2
fuzz: deps
	$(SWIFT) build -c release --product harrow-fuzz
	$(REL)/harrow-fuzz --runs $(FUZZ_RUNS) --seed $(FUZZ_SEED) --jobs $(FUZZ_JOBS) --out Fuzz/findings

# Starting checkpoints: models/base pretrained on the corpus, models/chat = base fully fine-tuned on the general
# instruction data. Each is rebuilt only when the sha256 of its config, data and trainer sources (and, for chat, of
# base) changes.
TRAINER_SOURCES := $(sort $(wildcard Sources/TrainingCore/*.swift Sources/HarrowTrain/*.swift Sources/HarrowCore/*.swift))
BASE_INPUTS := experiments/model-configs/base.json datasets/pretrain/corpus.jsonl $(TRAINER_SOURCES)
CHAT_INPUTS := experiments/model-configs/chat.json datasets/general/chat.jsonl datasets/general/instructions.jsonl $(TRAINER_SOURCES)
# TRAIN is the harrow-train that builds them: the release one unless a target passes its own.
TRAIN ?= $(REL)/harrow-train
models: deps
	@if [ "$(TRAIN)" = "$(REL)/harrow-train" ]; then $(SWIFT) build -c release --product harrow-train; fi
	@set -e; mkdir -p models/.runs; \
	base=$$(cat $(BASE_INPUTS) | sha256sum | cut -d' ' -f1); \
	if [ -f models/base/model.safetensors ] && [ "$$(cat models/base.sha256 2>/dev/null)" = "$$base" ]; then \
	  echo "models/base is up to date ($${base:0:12})"; \
	else \
	  echo "pretraining models/base (about a minute on 2 cores) ..."; rm -rf models/base models/base.sha256 models/.runs/base; \
	  start=$$(date +%s); \
	  OPENBLAS_NUM_THREADS=2 $(TRAIN) pretrain --config experiments/model-configs/base.json --run-dir models/.runs/base \
	    > models/.runs/base.log 2>&1 || { tail -20 models/.runs/base.log; exit 1; }; \
	  tail -1 models/.runs/base.log; mv models/.runs/base/checkpoint models/base; echo "$$base" > models/base.sha256; \
	  echo "models/base built in $$(( $$(date +%s) - start )) s"; \
	fi; \
	chat=$$(cat models/base.sha256 $(CHAT_INPUTS) | sha256sum | cut -d' ' -f1); \
	if [ -f models/chat/model.safetensors ] && [ "$$(cat models/chat.sha256 2>/dev/null)" = "$$chat" ]; then \
	  echo "models/chat is up to date ($${chat:0:12})"; \
	else \
	  echo "fine-tuning models/chat on the general instruction data (under a minute) ..."; rm -rf models/chat models/chat.sha256 models/.runs/chat; \
	  start=$$(date +%s); \
	  OPENBLAS_NUM_THREADS=2 $(TRAIN) sft --config experiments/model-configs/chat.json --run-dir models/.runs/chat \
	    > models/.runs/chat.log 2>&1 || { tail -20 models/.runs/chat.log; exit 1; }; \
	  tail -1 models/.runs/chat.log; mv models/.runs/chat/checkpoint models/chat; echo "$$chat" > models/chat.sha256; \
	  echo "models/chat built in $$(( $$(date +%s) - start )) s"; \
	fi

# The demo: starting models (once), then the 11-trial sweep, its diagnoses, a gate and the report; ends with one line
# per story of the sweep and where to look.
demo: release models
	@# A failed trial (exit 1) still leaves the rest to look at; a configuration error (2) stops here.
	$(REL)/harrow sweep experiments/demo.yaml; status=$$?; [ $$status -le 1 ] || exit $$status
	$(REL)/harrow diagnose --sweep demo
	@best=$$($(REL)/harrow runs --sweep demo --sort val/loss --limit 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])'); \
	  echo; echo "Release gate for the best run by val/loss ($$best):"; \
	  $(REL)/harrow gate $$best --gate gates/release.yaml || true
	@echo
	@$(REL)/harrow report --sweep demo --out reports/demo
	@echo "Open it: file://$(CURDIR)/reports/demo/index.html"
	@echo
	@echo "The sweep one change at a time (each line a story: over-fitting, under-training, learning rates, base vs chat,"
	@echo "forgetting against the mixing ratio):"
	@$(REL)/harrow ablation --sweep demo
	@echo
	@echo "A vendor's training file against ours, at mix_ratio 0 (experiments/vendor.yaml): Helpful, Harmless, and the judged"
	@echo "replies' usability, each with its paired test; then gates/vendor.yaml decides whether the vendor's run may ship:"
	$(REL)/harrow sweep experiments/vendor.yaml; status=$$?; [ $$status -le 1 ] || exit $$status
	@ids=$$($(REL)/harrow runs --sweep vendor --json | python3 -c 'import json,sys; r={x["params"]["dataset"]: x["id"] for x in json.load(sys.stdin)}; print(r["datasets/domain/train.jsonl"], r["datasets/domain/train-vendor.jsonl"])'); \
	  set -- $$ids; $(REL)/harrow compare $$1 $$2 --limit 3; echo; \
	  $(REL)/harrow gate $$2 --gate gates/vendor.yaml --baseline $$1 || true
	@$(REL)/harrow report --sweep vendor --out reports/vendor
	@echo "Open it: file://$(CURDIR)/reports/vendor/index.html"
	@echo
	@echo "Where to look:"
	@echo "  $(REL)/harrow runs --sweep demo --sort val/loss    # every trial, best first, with 3H scores in --json"
	@echo "  $(REL)/harrow show RUN                             # parameters, git state, metrics and files of one run"
	@echo "  $(REL)/harrow compare RUN_A RUN_B                  # what changed, and which eval items flipped"
	@echo "  $(REL)/harrow next --sweep demo -o next.yaml       # the next night's experiment, each change explained"
	@echo "  .harrow/runs/RUN/                                  # trial.json, metrics.jsonl, logs, checkpoint/, checkpoint-best/"

# Our checkpoints in transformers and PEFT: strict loading, AutoTokenizer ids against harrow-train's, a
# text-generation pipeline, scorers/hf_scorer.py against `harrow-train score` on both evalsets (and through
# `harrow eval --scorer` when .build/debug/harrow is built). Needs CPU torch,
# transformers and peft, installed into .build/hf-venv (torch from the CPU wheel index, a few hundred MB instead of
# the CUDA build; when that index cannot be reached, pip's find-links are its only other source).
HF_VENV := .build/hf-venv
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
HF_LORA := .build/hf-check/lora
check-hf: deps
	@if [ ! -x $(HF_VENV)/bin/python ] || ! $(HF_VENV)/bin/python -c 'import torch, transformers, peft' 2>/dev/null; then \
	  python3 -m venv $(HF_VENV) && \
	  $(HF_VENV)/bin/pip install -q --retries 1 --no-deps --index-url $(TORCH_INDEX) torch && \
	  $(HF_VENV)/bin/pip install -q torch transformers peft; \
	fi
	$(SWIFT) build --product harrow-train
	@$(MAKE) --no-print-directory models TRAIN=$(BIN)/harrow-train
	@# A small LoRA adapter on the chat model, retrained whenever the chat model changes.
	@if [ ! -f $(HF_LORA)/checkpoint/adapter_model.safetensors ] || [ "$$(cat $(HF_LORA).sha256 2>/dev/null)" != "$$(cat models/chat.sha256)" ]; then \
	  rm -rf $(HF_LORA) && mkdir -p $(HF_LORA) && \
	  OPENBLAS_NUM_THREADS=2 $(BIN)/harrow-train sft --run-dir $(HF_LORA) --dataset datasets/domain/train.jsonl \
	    --set base_model=models/chat --set max_samples=32 --set batch_size=8 --set lora_r=4 --set lora_alpha=8 \
	    --set lr=5e-3 --max-steps 8 > $(HF_LORA).log 2>&1 || { tail -20 $(HF_LORA).log; exit 1; }; \
	  cp models/chat.sha256 $(HF_LORA).sha256; \
	fi
	OPENBLAS_NUM_THREADS=2 $(HF_VENV)/bin/python scorers/check_hf.py --train $(BIN)/harrow-train --harrow $(BIN)/harrow \
	  --adapter $(HF_LORA)/checkpoint --adapter-base models/chat

# Real trainers under Harrow's profiles, outside `make test`: examples/trl_sft.py (TRL SFTTrainer, LoRA) under
# `profile: hf`, once reading its checkpoints and once through harrow.HarrowCallback, and `llamafactory-cli train`
# under `profile: llamafactory`, each a small sweep on models/chat into a temporary store (experiments/check/).
# Checks that every run succeeded and that its train/loss and val/loss curves reached the store while it ran and
# completely. CPU torch, transformers, peft, trl and llamafactory go into .build/trainers-venv (versions in
# scripts/trainers-requirements.txt); about 3 minutes once it exists. HARROW_BIN=DIR uses built binaries from DIR.
HARROW_BIN ?=
check-trainers: deps
	@if [ -z "$(HARROW_BIN)" ]; then $(SWIFT) build --product harrow-train && $(SWIFT) build --product harrow; fi
	@$(MAKE) --no-print-directory models TRAIN=$(or $(HARROW_BIN),$(BIN))/harrow-train
	HARROW_BIN=$(or $(HARROW_BIN),$(BIN)) scripts/check-trainers.sh

# W&B scripts unchanged under harrow, with the real W&B SDK (pinned; in .build/wandb-venv), outside `make test`:
# examples/wandb under a grid, nested parameters, and bayes with hyperband. Checks each trial's wandb.config against
# its plan and every logged point against W&B's own reader of the run's .wandb file (wandb 0.19.11's
# datastore.py, the last SDK with a Python reader), and that curves arrived while runs ran. About 2 minutes.
WANDB_VENV := .build/wandb-venv
WANDB_VERSION := 0.31.0
check-wandb: deps
	@if [ ! -x $(WANDB_VENV)/bin/python ] || [ "$$($(WANDB_VENV)/bin/python -c 'import wandb; print(wandb.__version__)' 2>/dev/null)" != "$(WANDB_VERSION)" ]; then \
	  rm -rf $(WANDB_VENV) && python3 -m venv $(WANDB_VENV) && $(WANDB_VENV)/bin/pip install -q --disable-pip-version-check wandb==$(WANDB_VERSION); \
	fi
	@if [ ! -f $(WANDB_VENV)/datastore.py ]; then \
	  $(WANDB_VENV)/bin/pip download -q --disable-pip-version-check --no-deps wandb==0.19.11 -d $(WANDB_VENV)/old && \
	  $(WANDB_VENV)/bin/python -c "import glob, zipfile; w = zipfile.ZipFile(glob.glob('$(WANDB_VENV)/old/wandb-0.19.11-*.whl')[0]); \
	    open('$(WANDB_VENV)/datastore.py', 'wb').write(w.read('wandb/sdk/internal/datastore.py'))" && rm -rf $(WANDB_VENV)/old; \
	fi
	@if [ -z "$(HARROW_BIN)" ]; then $(SWIFT) build --product harrow; fi
	$(WANDB_VENV)/bin/python scripts/check_wandb.py --harrow $(or $(HARROW_BIN),$(BIN))/harrow --python $(WANDB_VENV)/bin/python \
	  --datastore $(WANDB_VENV)/datastore.py

clean:
	rm -rf .build .harrow reports

# Measured training memory, for the memory estimate's tests (not part of `make test`).
include scripts/measure-memory.mk
include scripts/show-oom.mk
include scripts/check-openai.mk
include scripts/hf-judge.mk
