# The two commands README.md promises:
#   make demo   set up from nothing, then audit the bundled sample tree
#   make test   set up from nothing, then run every test (CI runs exactly this)
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
export POLICYBOT_KERNEL_CACHE ?= $(HOME)/.cache/policybot-kernels

.PHONY: setup demo test bench tools clean

$(BIN)/policybot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

setup: $(BIN)/policybot

demo: setup
	samples/demo $(VENV)/demo

test: setup tools
	scripts/kernel-trees >/dev/null
	scripts/kernel-binaries >/dev/null
	$(BIN)/python -m pytest -q -ra --ignore=tests/test_postgres.py
	# the state on PostgreSQL: the same code, a throwaway server on a unix socket
	POLICYBOT_REQUIRE_POSTGRES=1 scripts/with-postgres \
		$(BIN)/python -m pytest -q -ra tests/test_postgres.py tests/test_mail.py

# Debian's chromium, public-inbox, clang, llvm, libbpf-dev and bpftool: the tests
# use each for real and never skip for want of one (scripts/test-tools installs them);
# .venv-patchwork: Django and djangorestframework from PyPI, for the real patchwork
# server of tests/test_patchwork.py (scripts/patchwork-venv).
tools:
	scripts/test-tools
	PYTHON=$(PYTHON) scripts/patchwork-venv

# every speed target, each as a ratio to its reference (docs/performance.md); --readme rewrites its table
bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .venv-patchwork
