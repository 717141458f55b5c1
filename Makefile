# horq-codegen: `make demo` runs the main job on the bundled model, `make test` the tests.
# Both install what is missing first (scripts/setup.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/horq-codegen
MODEL := examples/mnist/model.pt2
STATIC_MODEL := examples/mnist/model_static.pt2
BIREAL_MODEL := examples/birealnet/model.pt2

.PHONY: setup demo test test-long bench mutants train paper train-step clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(CLI) inspect $(MODEL)
	$(CLI) verify $(MODEL) --target host --samples 1000
	$(CLI) $(MODEL) --target cortex-m7 -o out/mnist-cortex-m7 --force
	$(CLI) verify $(MODEL) --target cortex-m7 --samples 100
	$(CLI) verify $(MODEL) --board nucleo_f446re --samples 20
	$(CLI) bench $(MODEL) --target cortex-m7 --json out/bench-cortex-m7.json
	$(CLI) report $(MODEL) --target cortex-m7 -o out/report-cortex-m7.html

test: setup
	$(PY) -m pytest -q

# The property-based tests with many more random architectures and DAGs (about 300 each).
test-long: setup
	HYPOTHESIS_PROFILE=long $(PY) -m pytest -q tests/test_random_models.py tests/test_random_dags.py

# The benchmark suite: single layers and both examples (int8 and float activations) on Cortex-M4,
# Cortex-M7, Cortex-M55, Cortex-M33, Cortex-M3 and Cortex-A72, with llvm-mca's estimated cycles and the
# int8 comparison (--cycles); writes bench/results.json.
bench: setup
	$(PY) bench/run.py --cycles

# The mutation run: hand-written bugs the test suite must catch (scripts/mutants.py; about an hour).
mutants: setup
	$(PY) scripts/mutants.py

train: setup
	$(PY) examples/mnist/train.py --out $(MODEL)
	$(PY) examples/mnist/train.py --granularity static --out $(STATIC_MODEL)
	$(PY) examples/birealnet/train.py --out $(BIREAL_MODEL)

# The HORQ paper's MNIST experiments: float, XNOR and HORQ-2/3/4 at patch and static granularity,
# 3 seeds, full and quarter width; resumable (finished runs are cached in out/paper/runs).
paper: setup
	$(PY) examples/paper/run.py

# Seconds per training step, HORQ against its float twin (bench/train_step.py).
train-step: setup
	$(PY) bench/train_step.py

clean:
	rm -rf out .pytest_cache
