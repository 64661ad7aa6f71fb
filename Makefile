# The two commands of the README:
#   make demo   set up .venv (first time only) and run the demo on the built-in synthetic corpus
#   make test   set up .venv (first time only), run ruff and the test suite
# and for iterating: make test-fast (everything but the tests marked slow)
# Torch is installed first from the pinned CPU wheel so that no multi-GB CUDA build is downloaded.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.moodscope-installed
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test test-fast test-seeds lint bench fuzz clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,ray,serve,onnx]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/moodscope demo

# the suite on TEST_JOBS processes (pytest-xdist; each test on one thread), then the learning tests, which use
# every core themselves and print their figures, in one process
TEST_JOBS ?= 2
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/python -m pytest -m "not learning" -n $(TEST_JOBS) --durations=15
	$(BIN)/python -m pytest -m learning --durations=8

test-fast: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/python -m pytest -m "not slow" -n $(TEST_JOBS)

# every learning test for seeds 0, 1 and 2, under the CPU's native ISA and again capped at AVX2 (about 30 min)
LEARN_SEEDS ?= 0,1,2
test-seeds: $(STAMP)
	MOODSCOPE_LEARN_SEEDS=$(LEARN_SEEDS) $(BIN)/python -m pytest -m learning -p no:cacheprovider
	MOODSCOPE_LEARN_SEEDS=$(LEARN_SEEDS) ONEDNN_MAX_CPU_ISA=AVX2 $(BIN)/python -m pytest -m learning -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

# the parsers of untrusted bytes under Hypothesis for FUZZ_SECONDS (default 10 minutes) in all
FUZZ_SECONDS ?= 600
fuzz: $(STAMP)
	MOODSCOPE_FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/python -m pytest tests/fuzz -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python benchmarks/damff_speed.py
	$(BIN)/python benchmarks/adff_seg_num.py

clean:
	rm -rf $(VENV) demo-output runs .pytest_cache .ruff_cache
