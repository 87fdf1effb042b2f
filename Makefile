# make certify SEED=n [K=4] [STRATEGY=...] [LEAN=required]  - the main job
# make test                                                  - the test suite (what CI runs)
PY ?= python3
SEED ?= 123
K ?= 4
D_VOCAB ?= 64
STRATEGY ?= subcubic
LEAN ?= optional
SEEDS ?= paper151
JOBS ?= 2
STAMP := build/.deps-installed

.PHONY: certify test bench sweep report deps clean lean-check

$(STAMP): pyproject.toml
	@mkdir -p build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

deps: $(STAMP)

certify: $(STAMP)
	$(PY) -m certify run --seed $(SEED) --k $(K) --d-vocab $(D_VOCAB) --strategy $(STRATEGY) --lean $(LEAN)

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

clean:
	rm -rf build models results lean/.lake
