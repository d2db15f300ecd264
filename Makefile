# Every target bootstraps its own virtual environment on first use: a fresh clone needs
# only python3 (3.10+) and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ASSIGNMENTS := module0 module1
SEEDS ?= 200
# The offline base image (no registry needed) that `make base-image` builds; CI uses it.
GRADER_BASE_IMAGE ?= minitorch-grader-base:bookworm
export GRADER_BASE_IMAGE

.PHONY: help demo test test-fast lint handout bench flake-hunt base-image gradescope clean

help:
	@echo "make demo        grade the bundled example submissions and print the score table"
	@echo "make test        run the project's own tests (needs Docker for the container tests)"
	@echo "make test-fast   the same without the Docker tests"
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
	$(PY) grader/tests/run_parallel.py -q --durations=10

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not docker"

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
