# The two commands README.md promises:
#   make demo   set up from nothing, then audit the bundled sample tree
#   make test   set up from nothing, then run every test (CI runs exactly this)
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
export POLICYBOT_KERNEL_CACHE ?= $(HOME)/.cache/policybot-kernels

.PHONY: setup demo test bench clean

$(BIN)/policybot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

setup: $(BIN)/policybot

demo: setup
	$(BIN)/python samples/make_sample.py $(VENV)/sample-linux
	POLICYBOT_STATE_DIR=$(VENV)/state $(BIN)/policybot audit --repo $(VENV)/sample-linux \
		--base v6.1 --rev v6.2 --policy config/policy.toml; test $$? -le 1

test: setup
	scripts/kernel-trees >/dev/null
	$(BIN)/python -m pytest -q -ra

bench: setup
	$(BIN)/python bench/inventory.py

clean:
	rm -rf $(VENV)
