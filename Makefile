# Frontdesk: `make run` sets everything up and starts the bot (the sandbox without a
# config.toml); `make test` runs the whole suite. Both install the pinned, hashed versions
# of requirements-dev.lock; `make lock` (maintainers) regenerates the lock files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench sandbox lock clean

# The locked uv goes in first (its entry of the lock, by pip): it installs the rest in a few
# seconds where pip takes a minute. The checkout goes in last, without its dependencies (the
# lock has them all) and without build isolation: the locked setuptools builds it.
$(STAMP): requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	sed -n '/^uv==/,/# via/p' requirements-dev.lock > $(VENV)/uv.lock
	$(BIN)/python -m pip install --quiet --require-hashes -r $(VENV)/uv.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode --require-hashes \
		-r requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
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

# After editing the dependencies in pyproject.toml: `make lock` resolves what changed and
# keeps every other pin; `make lock UPGRADE=1` moves every pin to the newest release allowed.
# One universal resolution (markers for other platforms and Pythons), hashes of every file,
# by the venv's uv: the lock's own.
UV := $(BIN)/uv
UV_COMPILE = $(UV) pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --quiet --no-header $(if $(UPGRADE),--upgrade)
define LOCK_HEADER
# Pinned with hashes by `make lock` (uv pip compile --universal) from pyproject.toml; do
# not edit by hand. Valid for Python >= 3.11 on any platform; installed and tested on
# Linux x86_64 with CPython 3.11, the project's machine.
endef
export LOCK_HEADER

lock: $(STAMP)
	$(UV_COMPILE) --extra dev -o requirements-dev.lock
	$(UV_COMPILE) --constraint requirements-dev.lock -o requirements.lock
	for lock in requirements-dev.lock requirements.lock; do \
		{ echo "$$LOCK_HEADER"; cat $$lock; } > $$lock.new && mv $$lock.new $$lock; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
