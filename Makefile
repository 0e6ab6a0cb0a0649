# The two commands README.md promises:
#   make demo   set up from nothing, then audit the bundled sample tree
#   make test   set up from nothing, then run every test (CI runs exactly this)
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
export POLICYBOT_KERNEL_CACHE ?= $(HOME)/.cache/policybot-kernels

.PHONY: setup demo test bench browser bpf-tools clean

$(BIN)/policybot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

setup: $(BIN)/policybot

demo: setup
	samples/demo $(VENV)/demo

test: setup browser bpf-tools
	scripts/kernel-trees >/dev/null
	scripts/kernel-binaries >/dev/null
	POLICYBOT_REQUIRE_BROWSER=$${POLICYBOT_REQUIRE_BROWSER:-$$(command -v chromium >/dev/null && echo 1)} \
		$(BIN)/python -m pytest -q -ra --ignore=tests/test_postgres.py
	# the state on PostgreSQL: the same code, a throwaway server on a unix socket
	POLICYBOT_REQUIRE_POSTGRES=1 scripts/with-postgres \
		$(BIN)/python -m pytest -q -ra tests/test_postgres.py tests/test_mail.py

# The HTML page is tested in a real headless browser: Debian's chromium.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "policybot: no chromium (Debian: apt-get install chromium); the page's browser tests will skip"; }

# `policybot check` is tested on BPF programs compiled in the run (clang, libbpf-dev
# headers) and on real kernels' BTF checked with bpftool and llvm-objcopy. clang-19
# emits BTF for every extern (bookworm's clang 14 drops some); plain clang elsewhere.
BPF_PACKAGES = $$(apt-cache show clang-19 >/dev/null 2>&1 && echo clang-19 || echo clang) llvm libbpf-dev bpftool
bpf-tools:
	@{ command -v clang-19 >/dev/null || { command -v clang >/dev/null && ! apt-cache show clang-19 >/dev/null 2>&1; }; } \
		&& [ -f /usr/include/bpf/bpf_helpers.h ] \
		&& { command -v bpftool >/dev/null || [ -x /usr/sbin/bpftool ]; } && command -v llvm-objcopy >/dev/null || \
		{ [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BPF_PACKAGES) >/dev/null) \
		|| echo "policybot: no clang/libbpf-dev/bpftool (Debian: apt-get install $(BPF_PACKAGES)); the check tests will skip"; }

bench: setup
	$(BIN)/python bench/inventory.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/review.py

clean:
	rm -rf $(VENV)
