# Two commands do all set-up on a fresh machine (run as root): `make demo`, `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test test-fast lint corpus venv clean-venv

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==25.2
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

# The built-in world's corpus: Debian's fortunes (BSD). Installed once, as root.
corpus:
	@if [ ! -f /usr/share/games/fortunes/fortunes ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fortunes fortunes-min; \
	fi

# The main job: the quick over-optimization study on the built-in world (report under runs/study).
demo: venv corpus
	$(BIN)/rewardherd study --profile quick --out runs/study

test: venv corpus
	$(BIN)/python -m pytest -q

test-fast: venv
	$(BIN)/python -m pytest -q -m 'not slow'

lint: venv
	$(BIN)/ruff check src tests benchmarks
