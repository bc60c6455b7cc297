# Two commands set everything up on a fresh machine (Python 3.11, pip, make):
#   make demo   create .venv, install pinned versions, run the whole pipeline on bundled data
#   make test   same set-up, then run the tests
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.fijiport-installed
DEMO_DIR ?= demo_output
# the consumer runtimes (TF 1.13.1/1.15.0/2.10.1, onnxruntime 1.13.1, ~1.1 GB) live outside the
# repo and are kept between runs; `fijiport runtimes install` skips what is already verified
RUNTIMES_DIR ?= $(HOME)/.cache/fijiport/runtimes
export FIJIPORT_RUNTIMES_DIR := $(RUNTIMES_DIR)

.PHONY: install runtimes demo test test-fast lint docs wheel strip-notebooks bench clean help

help:
	@echo "make demo   - set up .venv and run the CARE demo into $(DEMO_DIR)/"
	@echo "make test   - set up .venv and the Fiji/KNIME runtimes, run the test suite"
	@echo "make runtimes - install TF 1.13.1/1.15.0/2.10.1 and onnxruntime 1.13.1 into $(RUNTIMES_DIR)"
	@echo "make lint   - import layers, ruff (lint + format) and pyright, as make test runs them"
	@echo "make docs   - the API reference from the docstrings into build/site/ (mkdocs --strict, offline)"
	@echo "make wheel  - wheel and sdist into dist/ (python -m build)"
	@echo "make strip-notebooks - remove outputs from notebooks/*.ipynb before committing them"
	@echo "make bench  - speed and memory ratios against csbdeep and bioimageio test (bench/results/)"
	@echo "make clean  - remove .venv, caches and demo output"

$(STAMP): pyproject.toml packaging/constraints.txt packaging/no-deps.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -c packaging/constraints.txt -e '.[test]'
	# n2v declares csbdeep<0.8 only out of caution; it runs on csbdeep 0.8.2 (tested), so it comes without its pins
	$(PIP) install --quiet --disable-pip-version-check --no-deps -r packaging/no-deps.txt
	$(PY) -c "import fijiport, csbdeep, stardist, bioimageio.core, tf2onnx; print('fijiport', fijiport.__version__, 'installed')"
	touch $(STAMP)

install: $(STAMP)

runtimes: $(STAMP)
	bash packaging/ensure_system_deps.sh
	$(VENV)/bin/fijiport runtimes install

demo: $(STAMP) runtimes
	$(VENV)/bin/fijiport demo -o $(DEMO_DIR) --overwrite

test: $(STAMP) runtimes lint
	$(PY) -m pytest

# the layers (import-linter counts imports inside functions too), lint and format (ruff), types (pyright, basic)
lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/pyright

# make test builds them too (tests/docs), so a broken docstring fails the suite
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

# make test builds and installs them in a throw-away venv (tests/packaging)
wheel: $(STAMP)
	$(PY) -m build --outdir dist .

strip-notebooks:
	$(PYTHON) notebooks/strip_outputs.py

bench: $(STAMP) runtimes
	$(PY) bench/run.py --out bench/results

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache build dist *.egg-info src/*.egg-info
