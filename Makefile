# The two README commands: `make study` and `make test`. Each creates .venv with the pinned
# dependencies when it is missing (a second call reinstalls nothing), then runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ferlib-installed
PROFILE ?= default
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: study test lab venv clean-venv chromium notebooks

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[notebooks,test]'
	@# facenet-pytorch 2.5.3 ships MTCNN weights; --no-deps keeps its metadata from changing torch.
	$(PY) -m pip install -q --no-deps facenet-pytorch==2.5.3
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

# pytest covers the library, nbval over the five notebooks (tests/test_notebooks.py) and the
# JupyterLab browser test; then the smoke study is checked against notebooks/baselines/.
test: $(STAMP) chromium
	FERLIB_PROFILE=smoke $(PY) -m pytest -q -p no:cacheprovider tests
	FERLIB_PROFILE=smoke $(PY) -m ferlib study --profile smoke --check

# Rebuild the notebooks from their jupytext sources, then refresh their committed outputs.
notebooks: $(STAMP)
	cd notebooks && for f in src/0*.py; do ../$(VENV)/bin/jupytext -q --update --to ipynb -o "$$(basename "$${f%.py}").ipynb" "$$f"; done
	$(PY) -m ferlib study --profile default --update-notebooks

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

clean-venv:
	rm -rf $(VENV)
