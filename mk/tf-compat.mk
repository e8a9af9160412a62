# TensorFlow version compatibility with the chart's TF Serving image. Included by the root Makefile.
#   make tf-compat-env   .cache/tf-serving-compat: a venv with exactly the TensorFlow that the chart's
#                        tensorflow/serving image is built on (pinned in requirements/tf-serving-compat.txt,
#                        which a test keeps equal to the chart's image tag); rebuilt when the pin changes
#   make tf-compat-test  load and run both exported model kinds under that TensorFlow

TF_COMPAT_VENV  := .cache/tf-serving-compat
TF_COMPAT_LOCK  := requirements/tf-serving-compat.txt
TF_COMPAT_STAMP := $(TF_COMPAT_VENV)/.installed

TEST_PREREQS += tf-compat-env

.PHONY: tf-compat-env tf-compat-test

$(TF_COMPAT_STAMP): $(TF_COMPAT_LOCK)
	@test -x $(TF_COMPAT_VENV)/bin/python || $(PYTHON) -m venv $(TF_COMPAT_VENV)
	$(TF_COMPAT_VENV)/bin/python -m pip install -q --upgrade "pip>=24"
	$(TF_COMPAT_VENV)/bin/python -m pip install -q --no-deps -r $(TF_COMPAT_LOCK)
	@touch $@

tf-compat-env: $(TF_COMPAT_STAMP) ## venv with the TF Serving image's TensorFlow (cached in .cache/)

tf-compat-test: install tf-compat-env ## exported models load and predict identically on TF Serving's TensorFlow
	$(PY) -m pytest -q tests/model_server/test_model_server_tf_compat.py
