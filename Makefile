# The two commands a new developer needs: `make run` and `make test`.
# Everything else here is what they are built from.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench mutation lint format contract postgres chromium node clean

# The environment is rebuilt whenever the declared or pinned dependencies change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

venv: $(STAMP)

# The console's front-end packages and the tests' OpenID provider (package-lock.json), installed
# again whenever the lockfile changes. The exchange serves them from node_modules: no CDN.
NODE_STAMP := node_modules/.installed

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

node: $(NODE_STAMP)

# The console's tests drive Debian's Chromium (a browser downloaded by a test tool cannot be
# reached here). Installed with apt-get when missing and we are root; otherwise say what to run.
chromium:
	@test -x /usr/bin/chromium || \
	  if [ "$$(id -u)" = 0 ]; then \
	    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } >/dev/null; \
	  else \
	    echo "/usr/bin/chromium is missing: run 'sudo apt-get install chromium' (the console's browser tests skip without it)"; \
	  fi

# `make run PORT=8001` serves on another port, with the issuer (`iss` of every token and
# message) to match, unless EXCHANGE_ISSUER is set.
PORT ?= 8000

run: $(STAMP) $(NODE_STAMP)
	$(BIN)/exchange db upgrade
	EXCHANGE_ISSUER="$${EXCHANGE_ISSUER:-http://127.0.0.1:$(PORT)}" \
	  $(BIN)/exchange serve --host 127.0.0.1 --port $(PORT)

test: $(STAMP) $(NODE_STAMP) chromium postgres
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest -n auto

# The benchmarks (bench/README.md): about half an hour on PostgreSQL; never part of `make test`.
bench: $(STAMP) postgres
	$(BIN)/python -m bench $(BENCH_ARGS)

# Mutation testing of the pure cores ([tool.mutmut] in pyproject.toml; README, Development):
# most of an hour on one core, so never part of `make test`. From scratch, one core after
# another on MUTATION_CHILDREN processes; then the score per core and the survivors.
MUTATION_CORES    := disclosure.policy access.throttle messages.retry wire.canonical audit.merkle
MUTATION_CHILDREN ?= 1

mutation: $(STAMP)
	rm -rf mutants
	for core in $(MUTATION_CORES); do \
	  $(BIN)/mutmut run --max-children $(MUTATION_CHILDREN) "app.$$core.*" || exit 1; \
	done
	@echo
	@$(BIN)/mutmut results --all true | grep -v ': not checked$$' | awk -F'[.:] *' '{ c = $$2 "." $$3; n[c]++ } \
	  $$NF ~ /^(killed|timeout)$$/ { k[c]++ } \
	  END { for (c in n) { printf "%-18s %4d of %4d mutants killed: %5.1f%%\n", c, k[c], n[c], 100 * k[c] / n[c]; \
	        K += k[c]; N += n[c] } \
	        printf "%-18s %4d of %4d mutants killed: %5.1f%%\n", "all", K, N, 100 * K / N }'
	@echo
	@$(BIN)/mutmut results | grep -v ': not checked$$' || true

# PostgreSQL is the production database: the suite runs every database test on it.
# If the local cluster is not answering, start it (this machine's way; see README).
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || \
	  { command -v pg_ctlcluster >/dev/null 2>&1 && \
	    pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -n1) main start && \
	    for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; } || \
	  echo "PostgreSQL is not answering on 127.0.0.1:5432; its half of the suite will skip (or fail under CI)."

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Regenerate the committed contract (OpenAPI document and JSON Schemas); a test fails on drift.
contract: $(STAMP)
	$(BIN)/python -m app.contract write

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache mutants node_modules
