# Two commands on a fresh machine: `make run` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch is pinned exactly: this version's CPU build lies on the development machines' disk.
TORCH  := torch==2.13.0
OUT    ?= runs/default

.PHONY: install install-test run test lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install --quiet $(TORCH) -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(VENV)/bin/rnnkit train --preset default --data default --out $(OUT)
	$(VENV)/bin/rnnkit predict $(OUT) \
		"a large carnivorous feline of the savanna" \
		"a sweet baked food made from flour and sugar" \
		"move quickly on foot across the ground"

test: install-test
	$(PY) -m pytest -q

lint: install-test
	$(VENV)/bin/ruff check src tests benchmarks scripts

clean:
	rm -rf $(VENV) runs .pytest_cache
