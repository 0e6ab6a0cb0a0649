# The two commands README.md promises:
#   make demo   set up from nothing, then audit the bundled sample tree
#   make test   set up from nothing, then run every test (CI runs exactly this)
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
export POLICYBOT_KERNEL_CACHE ?= $(HOME)/.cache/policybot-kernels

.PHONY: setup demo test bench browser public-inbox clean

$(BIN)/policybot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

setup: $(BIN)/policybot

demo: setup
	samples/demo $(VENV)/demo

test: setup browser public-inbox
	scripts/kernel-trees >/dev/null
	POLICYBOT_REQUIRE_BROWSER=$${POLICYBOT_REQUIRE_BROWSER:-$$(command -v chromium >/dev/null && echo 1)} \
	POLICYBOT_REQUIRE_PUBLIC_INBOX=$${POLICYBOT_REQUIRE_PUBLIC_INBOX:-$$(command -v public-inbox-httpd >/dev/null && echo 1)} \
		$(BIN)/python -m pytest -q -ra --ignore=tests/test_postgres.py
	# the state on PostgreSQL: the same code, a throwaway server on a unix socket
	POLICYBOT_REQUIRE_POSTGRES=1 scripts/with-postgres \
		$(BIN)/python -m pytest -q -ra tests/test_postgres.py tests/test_mail.py

# The HTML page is tested in a real headless browser: Debian's chromium.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "policybot: no chromium (Debian: apt-get install chromium); the page's browser tests will skip"; }

# --msgid and [inbox] query are tested against a real public-inbox-httpd (tests/test_publicinbox.py).
public-inbox:
	@command -v public-inbox-httpd >/dev/null || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq public-inbox >/dev/null) \
		|| echo "policybot: no public-inbox (Debian: apt-get install public-inbox); its tests will skip"; }

bench: setup
	$(BIN)/python bench/inventory.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/review.py

clean:
	rm -rf $(VENV)
