# Two entry points for a fresh Debian machine (root, Python 3.11): `make film` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FILM ?= examples/the_lighthouse_keeper.json

.PHONY: system browser film test lint

# ffmpeg/ffprobe for all media work (Debian's build has libass for burnt-in subtitles),
# espeak-ng for the simulator's spoken dialogue, DejaVu Sans for the burnt-in subtitles' font.
SUBTITLE_FONT := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
system:
	@if ! command -v ffmpeg >/dev/null || ! command -v espeak-ng >/dev/null \
			|| [ ! -f $(SUBTITLE_FONT) ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends ffmpeg espeak-ng fonts-dejavu-core; \
	fi

# Headless Chromium checks the dailies page in the tests (Debian's package; no browser download).
browser:
	@if ! command -v chromium >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium; \
	fi

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	# The speaker-embedding weights only (its declared torch stack is not needed: see pyproject).
	$(PY) -m pip install -q --no-deps resemblyzer==0.1.4
	touch $@

$(VENV)/.test: $(VENV)/.runtime
	$(PY) -m pip install -q -e ".[test]"
	touch $@

film: system $(VENV)/.runtime
	$(PY) -m flows.film $(FILM)

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Two test processes, a file each at a time: most tests wait on servers, simulators and
# ffmpeg, so two share the two cores well (12 min instead of 21 on this machine).
test: system browser $(VENV)/.test lint
	$(VENV)/bin/pytest -q -n 2 --dist loadfile
