# Carbon Efficiency Workbench — set-up and the two entry points (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DEMO   ?= data/demo
PYTEST_ARGS ?= -n 2

.PHONY: demo test install sysdeps clean help lab

help:
	@echo "make demo   # create .venv, install, generate the demo, run the inventory, serve the apps (Ctrl-C stops)"
	@echo "make test   # install test dependencies and run the whole suite"
	@echo "make lab    # JupyterLab on notebooks/ with the project's kernel"

# Debian/Ubuntu packages the project needs (venv, a CJK font for plots and PDFs, Chromium for the
# apps' browser tests, pango/harfbuzz for WeasyPrint's PDFs); skipped when present.
sysdeps:
	@missing=""; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || missing="$$missing fonts-noto-cjk"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	for lib in libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0; do \
	  dpkg -s $$lib >/dev/null 2>&1 || missing="$$missing $$lib"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 || \
	     (apt-get update -qq && apt-get install -y --no-install-recommends $$missing >/dev/null)) || \
	     echo "warning: could not install$$missing"; \
	  else echo "warning: please install:$$missing (sudo apt-get install$$missing)"; fi; \
	fi

$(BIN)/python: | sysdeps
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

install: $(VENV)/.installed

LAKE     ?= data/lake
REGISTRY ?= data/registry.db
USERS    ?= data/users.db
REGION   ?= data/region
PORT     ?= 5006

# the whole path: demo files → master data → the lake (ordinary ingest) → the inventory from the lake
demo: install
	$(BIN)/workbench demo generate --out $(DEMO)
	$(BIN)/workbench demo load $(DEMO) --lake $(LAKE) --registry $(REGISTRY)
	$(BIN)/workbench report inventory --enterprise demo-cement --lake $(LAKE) --registry $(REGISTRY) \
	    --period $$($(BIN)/workbench demo latest-period $(DEMO))
	$(BIN)/workbench demo region --out $(REGION) --enterprises 300
	$(BIN)/workbench grade --region $(REGION) --period 2025 --submit --by demo
	$(BIN)/workbench product label --enterprise demo-cement --product cement --period 2025 --lake $(LAKE) \
	    --out data/labels --by demo
	$(BIN)/workbench demo users --lake $(LAKE) --db $(USERS)
	WORKBENCH_REGION=$(REGION) $(BIN)/workbench apps serve --lake $(LAKE) --db $(USERS) --port $(PORT)

# JupyterLab on notebooks/ with the project's kernel (the venv's python)
lab: install
	$(BIN)/jupyter lab --notebook-dir=notebooks

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) data output .pytest_cache
