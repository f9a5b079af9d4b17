"""Serving a text classifier: a model bundle, a FastAPI service, a load test and a drift check.

Taught in ``notebooks/13_serving.ipynb``. The service is started with one command::

    python -m helpers.serve --model PATH/TO/BUNDLE --port 8000

One idea per module:

* ``bundle``: ``export_bundle`` writes what the service loads (ONNX, int8 by default as chapter
  08 chose, the tokenizer, the test set's scores for the drift check, a model card);
  ``load_bundle``; ``Limits``; ``psi`` and ``drift_verdict``; ``occlusion_scores``;
* ``app``: ``create_app``, the FastAPI app, with its request and response models;
* ``client``: ``Service`` (a real uvicorn process on 127.0.0.1), ``load_test``, ``page_check``;
* ``formats``: ``formats_table`` and ``malicious_checkpoint``;
* ``card``: ``model_card``, rendered from the recorded results of chapters 04, 07, 08 and 13.

The names chapter 13 uses are all here (``from helpers import serve; serve.create_app(...)``).
Importing the package does not import torch: the service needs only onnxruntime, tokenizers
and FastAPI (``export_bundle`` and ``formats_table`` import torch when called).
"""

from .app import (
                     STATIC,
                     ExplainRequest,
                     ExplainResponse,
                     PredictRequest,
                     PredictResponse,
                     create_app,
)
from .bundle import (
                     BUNDLE_FILE,
                     CARD_FILE,
                     Bundle,
                     Limits,
                     drift_verdict,
                     export_bundle,
                     load_bundle,
                     occlusion_scores,
                     psi,
)
from .card import chapter_figures, model_card
from .client import (
                     Service,
                     ServiceError,
                     chromium_path,
                     load_test,
                     off_the_loop,
                     page_check,
                     require_chromium,
                     run_load_test,
)
from .formats import formats_table, malicious_checkpoint

__all__ = ["Limits", "export_bundle", "load_bundle", "Bundle", "create_app", "psi",
           "drift_verdict", "occlusion_scores", "Service", "ServiceError", "load_test",
           "run_load_test", "formats_table", "malicious_checkpoint", "chapter_figures",
           "model_card", "chromium_path", "require_chromium", "off_the_loop", "page_check",
           "PredictRequest", "PredictResponse", "ExplainRequest", "ExplainResponse", "STATIC",
           "BUNDLE_FILE", "CARD_FILE"]
