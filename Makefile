# Two entry points for a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
SAMPLE_ISSUE ?= issue-1

.PHONY: demo test lint docs golden bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(STAMP)

## demo: install into .venv, then check, build, write the web edition and dry-run send the sample issue
demo: $(STAMP)
	$(BIN)/newsletter check $(SAMPLE_ISSUE)
	$(BIN)/newsletter build $(SAMPLE_ISSUE)
	$(BIN)/newsletter site
	@if $(BIN)/newsletter send --help >/dev/null 2>&1; then \
		$(BIN)/newsletter send $(SAMPLE_ISSUE) --dry-run; fi

## test: install with test extras into .venv, run the whole suite
test: $(TEST_STAMP)
	$(BIN)/python -m pytest

## lint: ruff on the package and its tests, mypy --strict (pyproject.toml) on the package; both must report nothing
lint: $(TEST_STAMP)
	$(BIN)/ruff check newsletter/ tests/
	$(BIN)/mypy

## docs: the documentation site (docs/, mkdocs.yml) built offline into site/; any warning fails it
docs: $(TEST_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

## golden: regenerate the golden files of the sample issue after an intended change
golden: $(TEST_STAMP)
	$(BIN)/python -m tests.golden

## bench: print the benchmark figures (QUICK=1: indicative figures in about two minutes)
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(if $(QUICK),--quick)

# Only the tools: build/ is disposable, and the send ledgers live in sent/ (never removed here).
clean:
	rm -rf $(VENV) .pytest_cache site
