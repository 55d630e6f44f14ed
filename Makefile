# Two commands on a fresh machine:
#   make course   set up, then run the chapters headless (PROFILE=offline by default: a pretrained encoder, no network)
#   make test     set up, then lint, type-check, the unit tests and every notebook under nbval (offline profile)
# Set-up uses the active virtual environment, or creates .venv. torch is installed first, pinned, so that
# machines with a local CPU build take it instead of downloading a CUDA build of several GB.

PROFILE ?= offline
TORCH ?= torch==2.13.0
ifdef VIRTUAL_ENV
PY := $(VIRTUAL_ENV)/bin/python
else
PY := .venv/bin/python
endif
STAMP := $(dir $(PY)).distilnb-installed
EXECUTED := outputs/$(PROFILE)/notebooks

.PHONY: setup course test benchmarks clean

setup: $(STAMP)
	@# The demo's browser test drives Debian's chromium (Playwright cannot download browsers offline): install it as root.
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "No chromium, and it cannot be installed here: the demo's browser test will be skipped."

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,demo]"
	touch $@

course: setup
	mkdir -p $(EXECUTED)
	DISTILNB_PROFILE=$(PROFILE) $(PY) -m jupyter nbconvert --to notebook --execute \
		--ExecutePreprocessor.timeout=-1 --output-dir $(EXECUTED) notebooks/0*.ipynb
	@echo "Executed notebooks: $(EXECUTED)/  Artifacts: outputs/$(PROFILE)/"

# Two pytest-xdist workers, one thread each: one runs the chapters in order under nbval, in the offline profile
# (the pretrained encoder, as `make course` runs them; notebooks/conftest.py keeps them together), the other the unit
# tests, whose tiny models run fastest on one thread.
test: setup
	$(PY) -m ruff check .
	$(PY) -m mypy distilnb
	OMP_NUM_THREADS=1 DISTILNB_PROFILE=offline HF_HUB_OFFLINE=1 DISTILNB_OUTPUT_ROOT=$$(mktemp -d) \
		$(PY) -m pytest -n 2 --dist loadgroup --nbval-lax --durations=15 tests notebooks

clean:
	rm -rf outputs .pytest_cache .mypy_cache
