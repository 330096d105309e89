# Targets a newcomer runs on a fresh machine. Everything lives in .venv/ at the repository root.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU wheel keeps the install small; GPU users install their own torch build first.
TORCH_SPEC ?= torch==2.13.0

.PHONY: venv test lint demo bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

# two test processes (the 2-core CI machine), one intra-op thread each
test: venv
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2

lint: venv
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

demo: venv
	$(VENV)/bin/aucseg demo --out runs/demo

bench: venv
	$(PY) benchmarks/loss.py
	$(PY) benchmarks/model.py
	$(PY) benchmarks/data.py
	$(PY) benchmarks/train_step.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
