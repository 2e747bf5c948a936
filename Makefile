# `make demo` and `make test` do all set-up on a fresh machine.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= python3

.PHONY: install demo test lint format clean bench

# torch first, pinned: 2.13.0 is the CPU build on this disk; a looser pin would pull CUDA wheels.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 'ninja>=1.11'
	# The CPU attention kernel compiles (about a minute on one core) while the rest installs.
	PYTHONPATH=. $(PY) -c 'from oversight.engine import kernels; kernels.available()' & \
	  $(PY) -m pip install -q -e '.[dev]' && wait
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m oversight.train

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The browser test drives Debian's chromium through chromedriver; nothing downloads a browser.
test: lint
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi
	$(PY) -m pytest

# The PPO core against TRL's GRPOTrainer on the same work (README, "Performance").
bench: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/ppo.py

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache .ruff_cache
