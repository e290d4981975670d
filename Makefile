# mmdg — two commands: `make demo` and `make test`. Both create/refresh .venv/ when needed.
#   make test-fast              the unit tier (no `slow` / `cli` / `tool` tests): under 3 minutes while you work
#   make install TORCH=system   keep the torch/torchvision you already have (e.g. a CUDA build)
#   make demo METHOD=full       pick the backbone tuning method of the demo (default sora)
#   make demo-compare           every method from the same pre-trained backbone: table + chart (SEEDS="0 1 2")
#   make demo-det               the detection demo (DWD-style VOC data, per-domain mAP@0.5)
#   make install MMCV_OPS=cuda  build mmcv with CUDA kernels (default auto: CUDA only where a GPU is visible or
#                               TORCH_CUDA_ARCH_LIST is set; MMCV_OPS=cpu never)
#   make wheelhouse DIR=wh      resolve here, collect the locked wheels + mmcv's source for an offline install
#                               (TORCH=system: without torch; PRESENT=freeze.txt: without what the target has);
#   make install WHEELHOUSE=wh  then installs from it with no network
PYTHON ?= python3
TORCH  ?=# empty: what .venv has (pinned torch for a new one)
VENV   := .venv
PY     := $(VENV)/bin/python
METHOD ?= sora
SEEDS ?= 0
DEMO_ARGS ?=
MMCV_OPS ?=# empty = auto: CUDA ops where a GPU is visible or TORCH_CUDA_ARCH_LIST is set
WHEELHOUSE ?=
DIR ?=

.PHONY: install wheelhouse demo demo-det demo-compare test test-fast benchmark clean-demo

install:
	@PYTHON=$(PYTHON) TORCH=$(TORCH) VENV=$(VENV) MMCV_OPS=$(MMCV_OPS) WHEELHOUSE=$(WHEELHOUSE) bash tools/install_env.sh

wheelhouse:
	@PYTHON=$(PYTHON) TORCH=$(TORCH) bash tools/wheelhouse.sh $(DIR)

demo: install
	$(PY) tools/demo.py --method $(METHOD) $(DEMO_ARGS)

demo-compare: install
	$(PY) tools/demo_compare.py --seeds $(SEEDS) $(DEMO_ARGS)

demo-det: install
	$(PY) tools/demo_det.py --method $(METHOD) $(DEMO_ARGS)

# the whole suite (what CI runs), with pytest's 15 slowest tests at the end
test: install
	$(PY) -m pytest tests -q -rs --durations=15

# the unit tier while you work: everything but the `slow`, `cli` and `tool` markers (pytest.ini)
test-fast: install
	$(PY) -m pytest tests -q -m "not slow and not cli and not tool" --durations=10

benchmark: install
	$(PY) -m pip install -q -r requirements/benchmark.txt
	$(PY) tools/benchmark.py --suite adapters $(BENCH_ARGS)

clean-demo:
	rm -rf data/demo work_dirs/demo data/demo_det work_dirs/demo_det work_dirs/demo_compare
