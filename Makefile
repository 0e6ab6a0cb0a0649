# The two commands README.md promises:
#   make demo   set up from nothing, then audit the bundled sample tree
#   make test   set up from nothing, then run every test (CI runs exactly this)
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
export POLICYBOT_KERNEL_CACHE ?= $(HOME)/.cache/policybot-kernels

.PHONY: setup demo test bench browser clean

$(BIN)/policybot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

setup: $(BIN)/policybot

demo: setup
	samples/demo $(VENV)/demo

test: setup browser
	scripts/kernel-trees >/dev/null
	$(BIN)/python -m pytest -q -ra --ignore=tests/test_postgres.py
	# the state on PostgreSQL: the same code, a throwaway server on a unix socket
	POLICYBOT_REQUIRE_POSTGRES=1 scripts/with-postgres \
		$(BIN)/python -m pytest -q -ra tests/test_postgres.py tests/test_mail.py

# The HTML page is tested in a real headless browser: Debian's chromium, a hard
# requirement of the tests (as PostgreSQL is): installed here when missing.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| { echo "policybot: the tests need chromium (Debian, as root: apt-get install chromium)" >&2; exit 1; }

bench: setup
	$(BIN)/python bench/inventory.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/review.py

clean:
	rm -rf $(VENV)
