# horq-codegen: `make demo` runs the main job on the bundled model, `make test` the tests.
# Both install what is missing first (scripts/setup.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/horq-codegen
MODEL := examples/mnist/model.pt2

.PHONY: setup demo test test-long train clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(CLI) inspect $(MODEL)
	$(CLI) $(MODEL) --target host -o out/mnist-host --force
	$(CLI) verify $(MODEL) --target host --samples 1000

test: setup
	$(PY) -m pytest -q

train: setup
	$(PY) examples/mnist/train.py --out $(MODEL)

clean:
	rm -rf out .pytest_cache
