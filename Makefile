# onestop — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_DIR ?= demo-data

.PHONY: demo test test-now test-later deps lint-fast lint typecheck bench clean messages node_modules

$(BIN)/onestop: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/onestop

demo: $(BIN)/onestop
	$(BIN)/onestop demo --data $(DEMO_DIR)

# What make test checks before the suite, plus the formatting check.
lint: lint-fast
	$(BIN)/ruff format --check onestop node hub sync tests bench

# The suite runs twice: on today's clock, then with the system clock 400 days ahead
# (libfaketime), so no test can depend on the day it was written.
test: lint-fast test-now test-later

deps:
	.ci/debian-deps

# axe-core, which the accessibility tests inject into each page (package.json, pinned in
# package-lock.json; a test tool only, never served).
node_modules: node_modules/axe-core/axe.min.js
node_modules/axe-core/axe.min.js: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint-fast: $(BIN)/onestop
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test-now: $(BIN)/onestop deps node_modules
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-later: $(BIN)/onestop deps node_modules
	faketime -f '+400d' $(BIN)/pytest -q $(PYTEST_ARGS)

bench: $(BIN)/onestop
	$(BIN)/python -m bench

# The UI message catalog (docs/i18n.md): extract what the sources mark (babel.cfg), merge it
# into onestop/locale/{zh_CN,en}; new zh_CN messages take their msgid, new English ones are
# listed for translation.  The catalogs are read as .po at runtime: nothing to compile.
POT := onestop/locale/messages.pot
messages: $(BIN)/onestop
	$(BIN)/pybabel -q extract -F babel.cfg -k lazy_gettext -k lazy_pgettext:1c,2 \
	  --add-location file --sort-by-file --no-wrap --project onestop --version 0.1.0 -o $(POT) .
	$(BIN)/pybabel -q update -i $(POT) -d onestop/locale --no-wrap --no-fuzzy-matching \
	  --ignore-obsolete
	rm -f $(POT)
	$(BIN)/python -m onestop.i18n

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache node_modules
