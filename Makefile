# Paidan (派单): set-up, run and test. `make run` and `make test` are the README's two commands.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
# The suite runs on SQLite, then on this PostgreSQL server (set it empty to skip).
PAIDAN_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: run test lint bench install designer translations db demo clean

run: install designer translations db demo
	$(FLASK) serve --host 127.0.0.1 --port 5000

# The two passes run at the same time, one per core; the PostgreSQL pass writes to a log that is
# shown when both have ended, and the target fails when either pass fails. On Ctrl-C the
# PostgreSQL pass gets SIGTERM, which tests/conftest.py turns into an interrupt: it drops its
# databases before it ends.
PG_TEST_LOG := test-artifacts/pytest-postgresql.log

test: install designer translations lint
	@if [ -z "$(PAIDAN_TEST_POSTGRES_URL)" ]; then exec $(BIN)/pytest; fi; \
	mkdir -p $(dir $(PG_TEST_LOG)); \
	PAIDAN_TEST_DATABASE_URL="$(PAIDAN_TEST_POSTGRES_URL)" $(BIN)/pytest \
		-o cache_dir=.pytest_cache/postgresql >$(PG_TEST_LOG) 2>&1 & postgres=$$!; \
	trap 'kill $$postgres 2>/dev/null; wait $$postgres; exit 130' INT TERM; \
	echo "== the suite on SQLite; on PostgreSQL at the same time, into $(PG_TEST_LOG)"; \
	$(BIN)/pytest; sqlite=$$?; \
	wait $$postgres; postgresql=$$?; \
	echo "== the same suite on PostgreSQL ($(PAIDAN_TEST_POSTGRES_URL))"; \
	cat $(PG_TEST_LOG); \
	echo "== exit status: SQLite $$sqlite, PostgreSQL $$postgresql (0 = passed)"; \
	[ $$sqlite -eq 0 ] && [ $$postgresql -eq 0 ]

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/engine.py --postgres "$(PAIDAN_TEST_POSTGRES_URL)"
	$(BIN)/python bench/inbox.py --postgres "$(PAIDAN_TEST_POSTGRES_URL)"
	$(BIN)/python bench/dispatch.py --postgres "$(PAIDAN_TEST_POSTGRES_URL)"
	$(BIN)/python bench/timers.py --postgres "$(PAIDAN_TEST_POSTGRES_URL)"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The page islands (htmx, form-js, bpmn-js) are built by Vite into app/static/dist.
designer: app/static/dist/.vite/manifest.json

designer/node_modules/.package-lock.json: designer/package-lock.json
	npm ci --prefix designer --no-audit --no-fund

DESIGNER_SOURCES := designer/vite.config.js designer/.bpmnlintrc $(wildcard designer/src/*/*.js designer/src/*/*.css designer/build/*.js designer/bpmnlint-plugin-paidan/*.js designer/bpmnlint-plugin-paidan/*/*.js)

app/static/dist/.vite/manifest.json: designer/node_modules/.package-lock.json $(DESIGNER_SOURCES)
	npm run build --prefix designer

translations: install
	$(BIN)/python scripts/i18n.py compile

db: install
	$(FLASK) db upgrade

demo: install
	$(FLASK) seed-demo

clean:
	rm -rf $(VENV) designer/node_modules app/static/dist instance
