# The two set-up commands of the README: `make run` and `make test`.
# Each creates the local virtual environment on first use and installs what it
# needs: `run` only the dashboard (`pip install -e .`), `test` also the test
# extras (pytest, mypy, Ray, ONNX: `.[test]`) and type-checks engine/, tui/ and
# nas3d_tui/ before the suite. One stamp per extra: each installs once, and `make test` after
# `make run` only adds the extras. `make check` is `make test`'s fast tier.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.created
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test check install clean

$(VENV_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	touch $(VENV_STAMP)

$(RUN_STAMP): pyproject.toml $(VENV_STAMP)
	$(PY) -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml $(VENV_STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

install: $(RUN_STAMP)

# 130: quit or stopped with a checkpoint (resumable), not an error for make.
run: $(RUN_STAMP)
	$(VENV)/bin/nas3d-tui || [ $$? -eq 130 ]

# The type checker first (strict on engine/, tui/ and nas3d_tui/, configured in pyproject.toml), then the suite.
test: $(TEST_STAMP)
	$(PY) -m mypy
	$(PY) -m pytest

# The fast tier to run before a commit: the type checker and the tests that start no other Python
# process, run no real search or training and need no browser, Ray, SLURM or GPU (the markers in
# pyproject.toml; docs/DEVELOPMENT.md). `make test` (CI) still runs everything.
CHECK_MARKERS := not (e2e or browser or ray or slurm or gpu or slow)
check: $(TEST_STAMP)
	$(PY) -m mypy
	$(PY) -m pytest -m "$(CHECK_MARKERS)"

clean:
	rm -rf $(VENV) build *.egg-info
