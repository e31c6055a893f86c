# Two commands do everything: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
OUT    := output

.PHONY: demo test install install-test browser screenshot bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# an editable install compiles nothing: the byte code is made here, once, so no run of
# kg compiles its own modules again (nor fails to keep them where PYTHONDONTWRITEBYTECODE is set)
install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m compileall -q kg

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m compileall -q kg

# Debian's Chromium for the browser tests (never `playwright install`).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

demo: install
	$(BIN)/kg build --sample -o $(OUT)

test: install-test browser
	$(BIN)/python -m pytest -q

# The README's picture of the viewer (needs fonts-noto-cjk for the Chinese labels).
screenshot: install-test browser
	@dpkg -s fonts-noto-cjk >/dev/null 2>&1 || apt-get install -y -qq fonts-noto-cjk >/dev/null
	$(BIN)/python benchmarks/screenshot.py docs/viewer.png

# Speed and memory, as ratios to a floor measured in the same run.
bench: install-test browser
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/viewer.py

clean:
	rm -rf $(VENV) $(OUT)/* build *.egg-info
