# Two entry points (see README): `make demo` runs the main job, `make test` runs the suite.
# Both create ./.venv on first use and install the project, its test extra and the TensorBoard plugin.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= $(if $(LUNG_KERAS_DATA),$(LUNG_KERAS_DATA),$(wildcard ../shared/data/montgomery_cxr))

.PHONY: venv demo test clean

# One resolve: the test extra names the dashboard (lung-keras-tb), found in its folder, not on an index.
$(VENV)/.installed: pyproject.toml $(wildcard tensorboard_plugins/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(foreach d,$(wildcard tensorboard_plugins/*/pyproject.toml),-e $(dir $(d))) -e ".[test]"
	touch $@

venv: $(VENV)/.installed

# Other hospitals' chest X-ray sets to test on: every folder under ../shared/data in the folder layout (images/)
# or the NLM layout (CXR_png/) other than the training set (the CT folders have neither). Never trained on.
SHARED_DATA ?= ../shared/data
EXTRA_TEST ?= $(filter-out $(abspath $(DATA)),$(abspath $(patsubst %/images,%,$(wildcard $(SHARED_DATA)/*/images)) \
	$(patsubst %/CXR_png,%,$(wildcard $(SHARED_DATA)/*/CXR_png))))

# The main job: train on healthy (normal) cases only, original vs augmented (and the flip ablation), 3 seeds
# each; test on held-out normal and, separately, tuberculosis cases, and on every EXTRA_TEST folder (another
# hospital); report in runs/compare/.
DEMO_ARGS ?= --healthy-only --seeds 3 --epochs 30 --no-flip-ablation --overwrite
demo: venv
	$(VENV)/bin/lung-keras compare $(if $(DATA),--data $(DATA),) --out runs/compare $(DEMO_ARGS) \
	  $(foreach d,$(EXTRA_TEST),--extra-test $(d))

# Augmentation tests run under JAX too (library code must not need TensorFlow); then the whole suite on TF.
# Two pytest-xdist workers, one test file per unit of work (tests/conftest.py): most long tests wait on fresh
# processes starting, browsers and TensorBoard, so two at once fill the 2-core CI machine. PYTEST_XDIST= runs
# everything in one process.
PYTEST_XDIST ?= -n 2 --dist loadfile --no-loadscope-reorder
test: venv
	LUNG_KERAS_DATA=$(DATA) KERAS_BACKEND=jax $(PY) -m pytest -q -rs -p no:cacheprovider $(PYTEST_XDIST) tests/augment tests/parity tests/preprocessing; \
	  rc=$$?; if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then exit $$rc; fi
	LUNG_KERAS_DATA=$(DATA) $(PY) -m pytest -q -rs $(PYTEST_XDIST) --durations=15; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

clean:
	rm -rf $(VENV) runs
