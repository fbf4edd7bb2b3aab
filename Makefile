# seal — run `make help` for the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.DEFAULT_GOAL := help

help: ## show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	@touch $(STAMP)

install: $(STAMP) ## create .venv (if missing), torch from TORCH_SPEC (CPU wheel by default), then seal-hep[EXTRAS] (dev: tests + the lloca extra, which brings L-GATr and PELICAN)

test: install ## run the fast CPU test suite (what CI runs); "no tests collected" fails
	@$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; exit $$rc

test-slow: install ## run the slow tests too (learning assertions, DDP)
	$(PY) -m pytest -q -m "not gpu"

lint: install ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

docs: install ## build the docs site into site/ strictly: a broken link, reference or docstring fails
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

format: install ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

DEMO_BUDGET := data.n_train=20000 data.n_val=5000 data.n_test=10000 data.batch_size=256 trainer.max_epochs=8

demo: install ## toy study: baseline / GSEAL / δSEAL / augmentation (~2 min on 2 cores), prints table + figure
	rm -rf outputs/demo
	$(PY) train.py -m +experiment=toy_baseline,toy_gsymm,toy_dsymm,toy_augment $(DEMO_BUDGET) hydra.sweep.dir=outputs/demo
	$(PY) scripts/report.py outputs/demo

BENCH_ARGS ?=

bench: install ## ratios of every penalty mode to plain training, end-to-end epochs, throughput, data, generation (~9 min CPU; BENCH_ARGS="--device cuda" on a GPU)
	$(PY) scripts/bench.py $(BENCH_ARGS)

fixture: install ## regenerate the test fixtures tests/data/fixture_{jets,dimuon}.h5 (~10 s)
	$(PY) scripts/generate_jets.py --out tests/data/fixture_jets.h5 --force --n-signal 150 \
		--n-background 150 --pt-min 400 --pt-max 800 --n-slices 2 --n-constituents 80 --chunk-jets 75 --seed 7
	$(PY) scripts/generate_dimuon.py --out tests/data/fixture_dimuon.h5 --force --n-signal 1000 \
		--n-background 1000 --chunk-events 500 --seed 7

data: install ## generate the default top-tagging set data/top_default.h5 (~2.5 min on 2 cores)
	$(PY) scripts/generate_jets.py --out data/top_default.h5 --n-signal 8000 --n-background 8000 \
		--pt-min 400 --pt-max 1200 --n-slices 8 --chunk-jets 250 --seed 12345

# what a bare GPU machine (torch, Lightning, h5py, sklearn, matplotlib, pytest there) lacks, as
# tested here; all pure Python, so one download serves any CPython 3 on x86-64
GPU_WHEELS := hydra-core==1.3.8 omegaconf==2.3.1 mplhep==1.3.3 mplhep-data==0.1.0 uhi==1.2.1 \
	lloca==2.0.0 lgatr==2.0.0 pelican-lite==1.1.4
GPU_PY ?= python3

wheels: install ## download into .whl/ the wheels `make gpu-check` installs on a bare GPU machine
	mkdir -p .whl
	$(PY) -m pip download -q --no-deps --only-binary=:all: -d .whl $(GPU_WHEELS)
	$(PY) -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3  # an sdist only

gpu-check: ## on an H100/H200 (≤ 8 min): installs .whl/, bf16 step bench, an epoch of every top experiment with GPU utilisation, pytest -m gpu, compile vs eager → docs/gpu.md
	$(GPU_PY) scripts/gpu_check.py

clean: ## remove caches and outputs (keeps .venv; `make distclean` removes it too)
	rm -rf outputs .pytest_cache .ruff_cache build dist site *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## also remove the virtual environment
	rm -rf $(VENV)

.PHONY: help install test test-slow lint docs format demo bench fixture data wheels gpu-check clean distclean
