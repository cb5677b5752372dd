# Folk Sampler: two commands do all the set-up.
#   make lab    install everything (once) and open JupyterLab on the first notebook
#   make test   install everything (once) and run every test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: lab test setup voila bench clean

setup: $(STAMP)

# torch is pinned in pyproject.toml (2.13.0, the CPU build): an unpinned torch pulls several GB of CUDA.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

# jupyter refuses to run as root unless told; root is common in containers and CI machines
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: setup
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/00_start_here.ipynb

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

voila: setup
	$(BIN)/voila $(ROOT_FLAG) notebooks/03_tune_studio.ipynb

bench: setup
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) datasets/cache .pytest_cache .ruff_cache
