# blurtools: `make demo` and `make test` do their own set-up in .venv.
.DELETE_ON_ERROR:
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := demo-out

.PHONY: all demo test test-slow bench man weights clean venv

all: test

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

demo: $(STAMP)
	bash examples/demo.sh $(DEMO)

bench: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

man: $(STAMP)
	$(PY) -m blurtools.cli.manpages man

weights: $(STAMP)
	bash scripts/train_default_weights.sh

clean:
	rm -rf $(DEMO) .pytest_cache
