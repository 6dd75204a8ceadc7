# cellbench: `make demo` runs the paper's experiments on the simulated station; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export QT_QPA_PLATFORM ?= offscreen

.PHONY: demo test bench mutation venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python main.py demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Mutation score of analysis/, module by module against each module's own tests (not part of `test`;
# 2-20 min per module on 2 cores). The default is the modules whose survivors tests/MUTANTS.md explains;
# MODULES="eis kramers_kronig ..." runs others (tests/mutation/run_mutation.py lists them; eis takes hours).
MODULES ?= arrhenius cold_discharge dcpol lsv physics inputs cycling kramers_kronig
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[mutation]"
	nice $(BIN)/python tests/mutation/run_mutation.py $(MODULES)

clean:
	rm -rf $(VENV) data reports .pytest_cache
