# simsop: the two commands are `make demo` and `make test`; the rest are helpers.
#   make venv         create .venv and install simsop with its dev extras (only when settings.ini/setup.py changed)
#   make demo         run the main job on the built-in synthetic catalog (ARGS="..." passes options to simsop_demo)
#   make serve        serve the demo's index: web page + JSON API on http://127.0.0.1:8000 (ARGS="..." to simsop_serve)
#   make test         everything: library in sync, notebooks clean, nbdev_test, pytest, docs site in headless Chromium
#   make docs         build the docs site offline (mkdocs) into build/site and check it in Chromium
#   make docs-serve   serve build/site on http://127.0.0.1:8000 (PORT=...), where its search works
#   make docs-quarto  nbdev_docs (needs Quarto) into _docs/
#   make readme       README.md from nbs/index.ipynb
#   make clean        remove build outputs (build/, _proc/, _docs/, site/); `make distclean` also removes .venv

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.simsop-installed
ARGS ?=

# The venv first on PATH: nbdev's tools call `pip`, `jupyter`, `nbdev_*` by name.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export VIRTUAL_ENV := $(abspath $(VENV))
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv demo serve test docs docs-serve docs-quarto readme chromium clean distclean

venv: $(STAMP)

$(STAMP): settings.ini setup.py pyproject.toml
	@test -x $(PY) || { echo "creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@mkdir -p build
	@echo "installing simsop[dev] into $(VENV) (log: build/pip.log)"
	@{ $(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q -e ".[dev]"; } > build/pip.log 2>&1 \
	  || { tail -40 build/pip.log; echo "pip install failed: see build/pip.log" >&2; exit 1; }
	@touch $@

demo: venv
	$(VENV)/bin/simsop_demo $(ARGS)

serve: venv
	$(VENV)/bin/simsop_serve $(ARGS)

# Headless Chromium for the docs checks: installed with apt-get when missing and we may (root or password-less sudo).
chromium:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then exit 0; fi; \
	SUDO=; if [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=sudo; fi; \
	if command -v apt-get >/dev/null 2>&1 && { [ "$$(id -u)" = 0 ] || [ -n "$$SUDO" ]; }; then \
	  echo "installing chromium + chromium-driver with apt-get"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	elif [ -n "$${CI:-}" ]; then \
	  echo "ERROR: chromium/chromedriver missing and apt-get is not usable: cannot check the docs site in CI" >&2; exit 1; \
	else \
	  echo "NOTE: chromium/chromedriver missing and apt-get is not usable here: the browser checks will be SKIPPED"; \
	fi

test: venv chromium
	@$(PY) tools/run_tests.py $(PYTEST_ARGS)

docs: venv chromium
	$(PY) tools/build_site.py
	$(PY) tools/check_site.py

# Serve the built site on loopback (search needs a web server: browsers run no search worker from file://).
docs-serve:
	@test -f build/site/index.html || { echo "no site yet: run make docs first" >&2; exit 1; }
	$(PY) -m http.server --bind 127.0.0.1 --directory build/site $(or $(PORT),8000)

docs-quarto: venv
	$(VENV)/bin/nbdev_docs

readme: venv
	$(PY) tools/render_readme.py

clean:
	rm -rf build _proc _docs site .pytest_cache

distclean: clean
	rm -rf $(VENV)
