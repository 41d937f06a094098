# onestop — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_DIR ?= demo-data

.PHONY: demo test lint typecheck bench clean

$(BIN)/onestop: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/onestop

demo: $(BIN)/onestop
	$(BIN)/onestop demo --data $(DEMO_DIR)

lint: $(BIN)/onestop
	$(BIN)/ruff check .
	$(BIN)/ruff format --check onestop node hub sync tests bench
	$(BIN)/mypy

test: $(BIN)/onestop
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: $(BIN)/onestop
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
