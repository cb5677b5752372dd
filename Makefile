# Folk Sampler: two commands do all the set-up.
#   make lab    install everything (once) and open JupyterLab on the first notebook
#   make test   install everything (once) and run every test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: lab test setup voila bench clean clean-notebooks binder-lock torch-pip

setup: $(STAMP)

# torch is pinned in pyproject.toml (an unpinned torch pulls several GB of CUDA) and installed first,
# on its own. On Linux the default index (PyPI) resolves the pin to the CUDA build (several GB of
# nvidia-* and triton packages); the PyTorch CPU wheel index holds the same version as +cpu, which
# pip prefers when it sees both. Only torch itself is looked up there (--no-deps; the second step
# installs its dependencies from the usual index), so an unreachable CPU index costs one failed
# look-up (a short timeout, two retries) and pip goes on with the indexes and wheels it can reach.
# macOS wheels on PyPI are CPU builds already: no extra index there.
# tests/test_install.py resolves these same arguments (`make torch-pip` prints them).
TORCH           := $(shell sed -n 's/^[[:space:]]*"\(torch==[^"]*\)".*/\1/p' pyproject.toml)
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_INDEX     := $(if $(filter Linux,$(shell uname -s)),--extra-index-url $(TORCH_CPU_INDEX))
TORCH_PIP       := --no-deps --timeout 10 --retries 2 $(TORCH_INDEX)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install $(TORCH_PIP) "$(TORCH)"
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

torch-pip:
	@echo $(TORCH_PIP) "$(TORCH)"

# jupyter refuses to run as root unless told; root is common in containers and CI machines
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: setup
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/00_start_here.ipynb

test: setup
	$(BIN)/ruff check .
	$(BIN)/python scripts/clean_notebooks.py --check
	$(BIN)/python -m pytest
	# the notebook checks again, with every logit wobbled as another machine's rounding would
	FOLK_SAMPLER_PERTURB_LOGITS=1e-6 $(BIN)/python -m pytest -q -p no:cacheprovider notebooks

# strip audio, widget state and big images from the notebooks before committing them
clean-notebooks: setup
	$(BIN)/python scripts/clean_notebooks.py

# pin every package Binder installs (binder/requirements.txt), CPU torch included
binder-lock: setup
	$(BIN)/python scripts/lock_binder.py --torch-index $(TORCH_CPU_INDEX)

voila: setup
	$(BIN)/voila $(ROOT_FLAG) notebooks/apps/tune_studio.ipynb

bench: setup
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) datasets/cache .pytest_cache .ruff_cache
