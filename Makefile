# make certify SEED=n [K=4] [STRATEGY=...] [LEAN=required]  - the main job
# make certify MODEL=path CONFIG=path                        - the same for your own model
#   (MODEL=path ASSUME=1: no config, the architecture is assumed and recorded)
# make certify MODEL=path CONFIG=path TASK=name [TASK_ARGS="--p 113"] - a general model on a task
# make test                                                  - the test suite (what CI runs)
#
# Python: inside an active virtual environment (VIRTUAL_ENV or CONDA_PREFIX) its python
# is used; otherwise a project-local .venv is created (a stock Debian/Ubuntu python3
# refuses system-wide pip installs, PEP 668). PY=... overrides both.
SEED ?= 123
K ?= 4
D_VOCAB ?= 64
STRATEGY ?= gap
LEAN ?= optional
SEEDS ?= paper151
JOBS ?= 2
VENV ?= .venv
MODEL ?=
CONFIG ?=
ASSUME ?=
TASK ?=
TASK_ARGS ?=

ifneq ($(origin PY),undefined)
  PY_SETUP :=
else ifneq ($(VIRTUAL_ENV)$(CONDA_PREFIX),)
  PY := python
  PY_SETUP :=
else
  PY := $(VENV)/bin/python
  # written by tools/ensure-venv.sh only once pip works: an interrupted first run is redone
  PY_SETUP := $(VENV)/.complete
endif
# one marker per environment: switching environments re-installs into the new one
STAMP := build/.deps-installed-$(subst /,_,$(PY)$(VIRTUAL_ENV)$(CONDA_PREFIX))

ifneq ($(MODEL),)
  MODEL_ARGS := --model $(MODEL) $(if $(CONFIG),--config $(CONFIG)) $(if $(ASSUME),--assume-architecture)
else
  MODEL_ARGS := --seed $(SEED) --k $(K) --d-vocab $(D_VOCAB)
endif

.PHONY: certify test bench sweep report deps clean lean-check

# Ctrl-C at any point before the marker leaves none, so the next make re-creates the environment.
$(VENV)/.complete:
	@sh tools/ensure-venv.sh $(VENV) python3

$(STAMP): pyproject.toml $(PY_SETUP)
	@mkdir -p build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

deps: $(STAMP)

certify: $(STAMP)
	@if [ -z "$(MODEL)" ] && [ -n "$(CONFIG)$(ASSUME)" ]; then echo "make: CONFIG= and ASSUME= go with MODEL=path (your model's checkpoint)" >&2; exit 2; fi
	$(PY) -m certify run $(MODEL_ARGS) $(if $(TASK),--task $(TASK) $(TASK_ARGS),--strategy $(STRATEGY) --lean $(LEAN))

test: $(STAMP)
	$(PY) -m pytest -q

sweep: $(STAMP)
	$(PY) -m certify sweep --k $(K) --seeds $(SEEDS) --strategies all -j $(JOBS) --out results/results.csv

report: $(STAMP)
	$(PY) -m certify report results/results.csv --out results/report

bench: $(STAMP)
	$(PY) benchmarks/bench.py
	$(PY) benchmarks/kernel_work.py

lean-check: $(STAMP)
	$(PY) benchmarks/lean_timings.py

# What a fresh clone does not have: build/ (deps markers), models/ (the trained-model
# store), results/ (sweeps, reports), lean/.lake (Lake's build), and the project-local
# environment $(VENV) (with its leftovers). An activated environment of your own is never touched.
clean:
	rm -rf build models results lean/.lake
	$(if $(PY_SETUP),rm -rf $(VENV))

# the paper's other configurations (issue 22; docs/scale.md): one preset's sweep and report
#   make sweep-preset PRESET=paper-k20-v512 [SEEDS=paper151] [JOBS=2]
PRESET ?= paper-k5
.PHONY: sweep-preset
sweep-preset: $(STAMP)
	$(PY) -m certify sweep --preset $(PRESET) --seeds $(SEEDS) --strategies all -j $(JOBS) --out results/$(PRESET)/results.csv
	$(PY) -m certify report results/$(PRESET)/results.csv --out results/$(PRESET)/report
