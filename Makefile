# Frontdesk: `make run` sets everything up and starts the bot (the sandbox without a
# config.toml); `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench sandbox clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	@if [ -f config.toml ]; then \
		$(BIN)/python -m bot run --config config.toml; \
	else \
		echo "No config.toml: starting the sandbox (a local Telegram emulator). Type 'help'."; \
		$(BIN)/python -m bot sandbox; \
	fi

sandbox: $(STAMP)
	$(BIN)/python -m bot sandbox

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python tests/bench/faq_eval.py
	$(BIN)/python tests/bench/faq_speed.py
	$(BIN)/python tests/bench/severity_eval.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
