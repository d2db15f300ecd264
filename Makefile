# Every target bootstraps its own virtual environment on first use: a fresh clone needs
# only python3 (3.10+) and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ASSIGNMENTS := module0 module1 module2
SEEDS ?= 200
# The flake hunt of `make test-all` (CI): seeds per assignment.
EVIDENCE_SEEDS ?= 20
# The offline base image (no registry needed) that `make base-image` builds; CI uses it.
GRADER_BASE_IMAGE ?= minitorch-grader-base:bookworm
export GRADER_BASE_IMAGE

.PHONY: help demo test test-all test-fast lint handout bench flake-hunt base-image gradescope clean

help:
	@echo "make demo        grade the bundled example submissions and print the score table"
	@echo "make test        the project's own tests: unit tests and one real grade of each kind"
	@echo "                 (sandbox, docker when an engine answers, bundle, batch, cluster)"
	@echo "make test-all    the full evidence make test leaves out: bug corpus, attacks, malformed"
	@echo "                 inputs, audits, containers, a cluster losing a worker, a flake hunt"
	@echo "make test-fast   make test's tests without the Docker ones, in one process"
	@echo "make handout     generate the student repositories under build/handout/"
	@echo "make gradescope  build the Gradescope autograder zips under dist/"
	@echo "make base-image  build the offline Debian base image (no registry needed)"
	@echo "make bench       benchmarks: sandbox vs in-process, CPU per correct and buggy grade"
	@echo "make flake-hunt  grade the reference under SEEDS=$(SEEDS) hypothesis seeds"
	@echo "make lint        ruff"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,cluster]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m grader demo --out out/demo

test: $(STAMP)
	$(PY) grader/tests/run_parallel.py --tier fast -q --durations=10

test-all: $(STAMP)
	$(PY) grader/tests/run_parallel.py --tier evidence -q --durations=10
	$(PY) bench/flake_hunt.py --seeds $(EVIDENCE_SEEDS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not docker and not evidence"

lint: $(STAMP)
	$(VENV)/bin/ruff check grader reference tests bench
	$(VENV)/bin/ruff format --check grader reference tests bench

handout: $(STAMP)
	@for a in $(ASSIGNMENTS); do $(PY) -m grader handout $$a --out build/handout/$$a || exit 1; done

gradescope: $(STAMP)
	@for a in $(ASSIGNMENTS); do $(PY) -m grader gradescope $$a --out dist/$$a-autograder.zip || exit 1; done

base-image:
	bash docker/build-base-image.sh $(GRADER_BASE_IMAGE)

bench: $(STAMP)
	$(PY) bench/bench_modes.py
	$(PY) bench/bench_feedback.py
	$(PY) bench/bench_containers.py
	$(PY) bench/bench_cluster.py

flake-hunt: $(STAMP)
	$(PY) bench/flake_hunt.py --seeds $(SEEDS)

clean:
	rm -rf build dist out .pytest_cache
