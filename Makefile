# The two quick-start commands: `make serve` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
# The torch build to install. On a CPU-only machine, a CPU build avoids gigabytes of CUDA
# packages: TORCH_INDEX=https://download.pytorch.org/whl/cpu make serve
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
PORT ?= 8000

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The JavaScript SDK the test suite also drives (needs Node.js and npm).
JS_SDK := tests/js/node_modules/.package-lock.json

.PHONY: install serve test lint clean

install: $(STAMP)

# pip's own lines (what it collects, downloads and installs), not silence: a first install takes
# minutes, most of it torch.
$(STAMP): pyproject.toml
	@echo "Setting up $(VENV) (first run only): torch, then imagegen and its dependencies..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar on $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	$(BIN)/python -m pip install --progress-bar on -e ".[dev]"
	touch $@

$(JS_SDK): tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund

serve: $(STAMP)
	$(BIN)/imagegen serve --port $(PORT)

# ruff's lint and format check (its configuration is in pyproject.toml); CI runs it before the tests.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) $(JS_SDK)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache tests/js/node_modules
