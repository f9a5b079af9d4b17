"""Helpers for the deep-learning handbook.

Each module is introduced by a notebook, named in its docstring:

* ``profiles``, ``env``, ``paths``, ``hardware``, ``notebook``, ``runner``, ``colab``:
  ``00_setup``;
* ``data`` (the dataset registry and loaders), ``crawl``: ``01_data_collection``;
* ``clean``: ``02_data_cleaning``;
* ``train`` (the shared training loop), ``models``, ``experiment`` (seeds and intervals):
  ``03_cnn_training``;
* ``text``, ``evaluate`` (calibration): ``04_bert_finetuning``;
* ``tune``: ``05_hyperparameter_tuning``;
* ``recipes`` (the course's trained models, one call each): ``03``, ``04``, ``06``;
  ``evaluate`` (intervals, paired comparisons, fairness): ``07_evaluation_fairness``;
* ``compress`` (size, latency, pruning, distillation, export): ``08_compression``;
* ``explain`` (Captum attributions, overlays, deletion curves, sanity checks):
  ``09_explainability``;
* ``privacy`` (DP-SGD with Opacus, loss-threshold and LiRA attacks): ``10_privacy_dp``;
* ``federated``, ``flower_app`` (FedAvg by hand and on Flower): ``11a_federated_learning``;
* ``pii``, ``crypto`` (PII detection, k-anonymity, encrypted checkpoints): ``11b_pii_encryption``;
* ``scale``, ``ddp`` (PostgreSQL for shared tuning, torchrun): ``12_scaling_out``;
* ``serve`` (model bundle, FastAPI service, load test, drift, model card): ``13_serving``.

Import the modules you need, e.g. ``from helpers import env, profiles``.
"""

import logging as _logging
import os as _os

# ONNX Runtime (1.32 on Linux) starts a telemetry session when it is imported: it writes a
# ``.ses`` file into the system's temporary folder and queues usage events. The course runs
# offline and leaves nothing behind, so it is off unless you set ORT_DISABLE_TELEMETRY yourself.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
# The one place that says where the course lives: Colab badges, install cells (rendered by
# ``python -m tools.colab sync``) and the crawler's user agent all read these.
REPOSITORY = "https://github.com/dl-handbook/dl-handbook"
REF = "main"


class _DropNotice(_logging.Filter):
    """Drops one harmless library notice that names local paths and says nothing to a learner
    (and would put this machine's paths into the committed notebook outputs)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: _logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


# torchao (imported by transformers) registers Enums with torch's pytree on import; a CUDA
# build of torch on a machine without CUDA says so when torch.utils.benchmark is imported;
# ONNX Runtime's quantizer asks, on the root logger, for a pre-processing step (shape inference
# and graph optimization) that changes nothing for the course's models (chapter 08 measures them).
for _logger, _text in [("torch.utils._pytree", "register_constant() on Enum subclasses"),
                       ("torch.utils.cpp_extension", "No CUDA runtime is found"),
                       ("", "Please consider to run pre-processing before quantization"),
                       ("", "Please consider pre-processing before quantization")]:
    _logging.getLogger(_logger).addFilter(_DropNotice(_text))
