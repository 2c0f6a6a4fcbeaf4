# The two README commands: `make study` and `make test`. Each creates .venv with the pinned
# dependencies when it is missing (a second call reinstalls nothing), then runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ferlib-installed
# Exact versions for this machine; pyproject.toml declares ranges (see constraints.txt).
PIP_INSTALL := $(PY) -m pip install -q -c constraints.txt
PROFILE ?= default
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: study test lint lab venv clean-venv chromium notebooks

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PIP_INSTALL) torch torchvision
	$(PIP_INSTALL) -e '.[notebooks,test,retinaface-pypi]'
	@# facenet-pytorch (pinned in constraints.txt) ships MTCNN weights; --no-deps keeps its metadata from changing torch.
	$(PIP_INSTALL) --no-deps facenet-pytorch
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

study: $(STAMP)
	$(PY) -m ferlib study --profile $(PROFILE)

# Headless Chromium for the JupyterLab browser test (Debian package; needs root or sudo).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing and no root: the browser test will be skipped"; fi; }

# ruff (version pinned in constraints.txt, rules in pyproject.toml [tool.ruff]): lint, then layout.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# lint first; pytest covers the library, nbval over the five notebooks (tests/study/test_notebooks.py) and
# the JupyterLab browser test; then the smoke study is checked against notebooks/baselines/.
test: $(STAMP) chromium lint
	FERLIB_PROFILE=smoke $(PY) -m pytest -q -p no:cacheprovider tests
	FERLIB_PROFILE=smoke $(PY) -m ferlib study --profile smoke --check

# Rebuild the notebooks from their jupytext sources, then refresh their committed outputs with the
# `lecture` profile (about 90 minutes on 2 CPU cores; docs/study.md).
notebooks: $(STAMP)
	cd notebooks && for f in src/0*.py; do ../$(VENV)/bin/jupytext -q --update --to ipynb -o "$$(basename "$${f%.py}").ipynb" "$$f"; done
	$(PY) -m ferlib study --profile lecture --update-notebooks

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

clean-venv:
	rm -rf $(VENV)
