# Two entry points for a fresh machine: `make run` (install + start the app) and `make test`
# (install + lint + the whole test suite, with the optional Ray extra so the cluster tests run). Both
# create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test lint bench clean

$(VENV)/.app-installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.app-installed requirements-dev.txt requirements-cluster.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-cluster.txt
	touch $@

run: $(VENV)/.app-installed
	$(PY) -m streamlit run app.py --server.port $(PORT)

lint: $(VENV)/.dev-installed
	$(PY) -m ruff check .

test: $(VENV)/.dev-installed
	scripts/ensure-chromium.sh
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: $(VENV)/.app-installed
	$(PY) -m core bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
