"""Chapter 08's quantization table for this device: size, p50/p95, throughput and accuracy.

A benchmark, not a test: it builds every quantized variant of the chapter-04 text model
(fp32 eager, torchao int8 dynamic and weight-only, ONNX Runtime fp32 and int8 dynamic, and
fp16/bf16 where CUDA is present) and of the chapter-03 CNN (fp32 eager, ONNX Runtime fp32
and static int8), times them side by side in one run with ``helpers.compress`` and scores
them on the test split. Ratios between rows are meaningful; absolute figures are this
machine's. The models come from ``helpers.recipes`` (reused from ``DL_HANDBOOK_HOME`` when
chapters 03 and 04 ran, trained otherwise). Pruning and distillation, which need training,
are measured in the notebook only.

    python benchmarks/compression.py [--profile quick] [--threads 2] [--n-test 1000]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from helpers import compress, env, evaluate, profiles, recipes, text


def _row(model: str, variant: str, fn, inputs1, inputs32, size: float, score, y, base, threads: int,
         device: torch.device | None = None) -> dict:
    row, probs = compress.measure_variant(fn, inputs1, inputs32, size, score, y, base, threads=threads,
                                          device=device)
    out = {"model": model, "variant": variant, "size MB": size, "p50 ms": row["p50_ms"],
           "p95 ms": row["p95_ms"], "items/s @32": row["throughput"], "accuracy": row["accuracy"]}
    if base is not None:
        out["drop (95% CI)"] = f"{row['drop']:+.4f} [{row['drop low']:+.4f}, {row['drop high']:+.4f}]"
    return out | {"_probs": probs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=list(profiles.PROFILES))
    parser.add_argument("--threads", type=int, default=None, help="default: all cores")
    parser.add_argument("--n-test", type=int, default=1000, help="test sentences to score")
    args = parser.parse_args()
    threads = args.threads or torch.get_num_threads()
    device = env.pick_device()
    work = Path(tempfile.mkdtemp(prefix="compression-bench-"))
    print(f"device {device.type}, {threads} threads; CPU: {compress.cpu_features()}")

    # the text model and its variants
    text_cfg = profiles.chapter_config(args.profile, "bert")
    train_df, _, test_df = recipes.text_splits(text_cfg, 0)
    name = text.quick_model_path() if text_cfg.model == "minilm-l6" else text_cfg.model
    tokenizer, _ = text.load_classifier(name, num_labels=2)
    clf, _ = recipes.fine_tune_text(text_cfg, name, tokenizer, train_df, 0, device)
    fp32 = text.TensorClassifier(clf.cpu().model).eval()
    texts, y = test_df["text"].tolist()[: args.n_test], test_df["label"].to_numpy()[: args.n_test]
    batch = tokenizer(texts[:32], truncation=True, max_length=64, padding="max_length", return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]

    def text_probs(fn) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for s in range(0, len(texts), 64):
                b = tokenizer(texts[s:s + 64], truncation=True, max_length=text_cfg.max_length,
                              padding=True, return_tensors="pt")
                out.append(np.asarray(fn(b["input_ids"], b["attention_mask"]), dtype=np.float32))
        return evaluate.apply_temperature(np.concatenate(out), 1.0)

    from onnxruntime.quantization import QuantType, quantize_dynamic
    from torchao.quantization import (
        Int8DynamicActivationInt8WeightConfig,
        Int8WeightOnlyConfig,
        quantize_,
    )

    names = ["input_ids", "attention_mask"]
    onnx_path = compress.export_onnx(fp32, (ids, mask), work / "text.onnx", names,
                                     dynamic={n: {0: "batch", 1: "length"} for n in names})
    quantize_dynamic(onnx_path, work / "text-int8.onnx", weight_type=QuantType.QInt8, per_channel=True)
    variants = {"fp32 eager": fp32}
    for label, config in [("torchao int8 dynamic", Int8DynamicActivationInt8WeightConfig()),
                          ("torchao int8 weight-only", Int8WeightOnlyConfig())]:
        variants[label] = copy.deepcopy(fp32)
        quantize_(variants[label], config)
    variants["ONNX Runtime fp32"] = compress.OrtModel(onnx_path, threads=threads)
    variants["ONNX Runtime int8 dynamic"] = compress.OrtModel(work / "text-int8.onnx", threads=threads)
    rows, base = [], None
    for label, model in variants.items():
        size = model.size_mb if isinstance(model, compress.OrtModel) else compress.size_mb(model)
        rows.append(_row(text_cfg.model, label, model, (ids[:1], mask[:1]), (ids, mask), size, text_probs, y,
                         base, threads))
        base = rows[0]["_probs"]
    if device.type == "cuda":
        for dtype in (torch.float16, torch.bfloat16):
            half = copy.deepcopy(fp32).to(device, dtype)

            def fn(i, m, net=half):
                return net(i.to(device), m.to(device)).float().cpu()

            rows.append(_row(text_cfg.model, f"{dtype} eager".replace("torch.", ""), fn, (ids[:1], mask[:1]),
                             (ids, mask), compress.size_mb(half), text_probs, y, base, threads, device))

    # the CNN: fp32 eager, ONNX Runtime fp32 and static int8
    cnn_cfg = profiles.chapter_config(args.profile, "cnn")
    d = recipes.image_data(cnn_cfg, args.profile)
    cnn, _, _ = recipes.train_cnn(cnn_cfg, d, 0, device)
    cnn = cnn.cpu().eval()
    y_img = d.y_test.numpy()

    def cnn_probs(fn) -> np.ndarray:
        with torch.inference_mode():
            logits = np.concatenate([np.asarray(fn(d.x_test[i:i + 1000])) for i in range(0, len(d.x_test), 1000)])
        return evaluate.apply_temperature(logits, 1.0)

    path = compress.export_onnx(cnn, (d.x_test[:32],), work / "cnn.onnx", ["images"], dynamic={"images": {0: "batch"}})
    int8 = compress.quantize_static_onnx(path, work / "cnn-int8.onnx", d.x_fit[:1000])
    cnn_base = None
    for label, model in [("fp32 eager", cnn), ("ONNX Runtime fp32", compress.OrtModel(path, threads=threads)),
                         ("ONNX Runtime int8 static", compress.OrtModel(int8, threads=threads))]:
        size = model.size_mb if isinstance(model, compress.OrtModel) else compress.size_mb(model)
        rows.append(_row("CNN", label, model, (d.x_test[:1],), (d.x_test[:32],), size, cnn_probs, y_img,
                         cnn_base, threads))
        cnn_base = cnn_base if cnn_base is not None else rows[-1]["_probs"]

    table = pd.DataFrame(rows).drop(columns="_probs").set_index(["model", "variant"])
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).fillna(""))


if __name__ == "__main__":
    main()
