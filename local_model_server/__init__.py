"""A development and test stand-in for TensorFlow Serving. Not for production.

It serves the SavedModel version directories that ``training`` exports, with TensorFlow's own
loader, and speaks TF Serving's REST and gRPC APIs (model status, metadata, predict; same JSON
shapes, same error mapping), watching the base path for new versions the way TF Serving does. It
exists so the stack runs where no ``tensorflow/serving`` container can (a laptop without Docker,
CI). The Helm chart always deploys the real ``tensorflow/serving`` image, never this.

Run: ``python -m local_model_server --port 8500 --rest_api_port 8501 --model_name news
--model_base_path models/news``, or with tensorflow_model_server's command line
(``--model_config_file``, ``--enable_batching``, ...) as ``local-tensorflow-model-server``.
See docs/local_model_server.md."""

__all__ = ["__version__"]
__version__ = "0.1.0"
