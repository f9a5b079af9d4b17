"""The course's trained models, one call each, for the chapters that come after them.

Taught in ``notebooks/03_cnn_training.ipynb`` (``image_data``, ``train_cnn``),
``notebooks/06_regularization.ipynb`` (``regularization_data``, ``train_small_cnn``) and
``notebooks/04_bert_finetuning.ipynb`` (``text_splits``, ``fine_tune_text``); used again from
``notebooks/07_evaluation_fairness.ipynb`` on, to evaluate, compress, explain and serve them.

Each function is the chapter's own recipe, step by step as the chapter explains it, so a later
chapter gets the same model without copying training code. The same configuration, seed and
data give the same run key (``train.run_key``): a later chapter reuses the checkpoint that the
earlier one wrote under ``DL_HANDBOOK_HOME`` instead of training again, and trains afresh when
anything differs (``make test`` starts every notebook in an empty home, so it always trains).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from helpers import data, env, models, paths, text, train

__all__ = ["image_data", "image_model", "train_cnn", "text_splits", "fine_tune_text",
           "regularization_data", "shift_flip", "train_small_cnn", "CREDIT_CATEGORICAL",
           "CREDIT_NUMERIC", "credit_splits", "credit_model"]

CREDIT_CATEGORICAL = ("sex", "job", "housing", "saving_accounts", "checking_account", "purpose")
CREDIT_NUMERIC = ("credit_amount", "duration", "age")


def image_data(cfg: SimpleNamespace, profile: str) -> SimpleNamespace:
    """Chapter 03's data: Fashion-MNIST (quick) or CIFAR-10 (full) as float tensors in [0, 1],
    normalized per channel with the training set's mean and std; the last 5,000 training
    images are the validation set. Also the raw uint8 arrays (``x_tr``, ``x_te``)."""
    if cfg.dataset == "fashion-mnist":
        (x_tr, y_tr), (x_te, y_te) = (data.load_fashion_mnist(s, profile=profile)
                                      for s in ("train", "test"))
        x_tr, x_te = x_tr[:, None], x_te[:, None]  # N, 1, 28, 28
        class_names = data.FASHION_MNIST_CLASSES
    else:
        (x_tr, y_tr), (x_te, y_te) = (data.load_cifar10(s, profile=profile) for s in ("train", "test"))
        x_tr, x_te = x_tr.transpose(0, 3, 1, 2), x_te.transpose(0, 3, 1, 2)  # N, 3, 32, 32
        class_names = data.CIFAR10_CLASSES

    def to_tensor(x: np.ndarray) -> torch.Tensor:
        return torch.tensor(x, dtype=torch.float32) / 255

    x_train, x_test = to_tensor(x_tr), to_tensor(x_te)
    y_train, y_test = torch.tensor(y_tr), torch.tensor(y_te)
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    return SimpleNamespace(
        x_tr=x_tr, y_tr=y_tr, x_te=x_te, y_te=y_te, class_names=class_names, mean=mean, std=std,
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
        x_fit=x_train[:-5000], y_fit=y_train[:-5000], x_val=x_train[-5000:], y_val=y_train[-5000:])


def image_model(cfg: SimpleNamespace, in_channels: int = 1) -> nn.Module:
    """Chapter 03's network: ``SmallCNN`` (quick) or ``ResNet9`` (full), untrained."""
    if cfg.model == "small-cnn":
        return models.SmallCNN(num_classes=10, in_channels=in_channels)
    return models.ResNet9(num_classes=10)


def train_cnn(cfg: SimpleNamespace, d: SimpleNamespace, seed: int, device: torch.device
              ) -> tuple[nn.Module, train.History, str]:
    """Chapter 03's training run: AdamW (quick) or Nesterov SGD (full) with a one-cycle
    schedule stepped per batch, gradient clipping at 5, label smoothing from the profile,
    random crops and flips for the ResNet. Checkpointed under its run key; returns the trained
    net, its ``History`` and the key."""
    env.seed_everything(seed)
    net = image_model(cfg, d.x_fit.shape[1])
    augment = None if cfg.model == "small-cnn" else train.random_crop_flip  # GPU-side, as airbench
    train_loader = train.TensorLoader(d.x_fit.to(device), d.y_fit.to(device), cfg.batch_size,
                                      shuffle=True, seed=seed, transform=augment, drop_last=True)
    val_loader = train.TensorLoader(d.x_val.to(device), d.y_val.to(device), 1024)
    if cfg.optimizer == "sgd":
        optimizer = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                                    weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.num_epochs * len(train_loader))
    run = {**vars(cfg), "seed": seed, "schedule": "one-cycle, stepped per batch", "grad_clip": 5.0,
           "data": train.fingerprint(d.x_fit, d.y_fit, d.x_val, d.y_val)}
    key = train.run_key(run, code=[models, sys.modules[__name__]])  # configuration + code
    history = train.fit(
        net, train_loader, val_loader, num_epochs=cfg.num_epochs, optimizer=optimizer,
        loss_fn=nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing), scheduler=scheduler,
        scheduler_step="batch", device=device, grad_clip=run["grad_clip"],
        checkpoint_dir=paths.checkpoint_dir("cnn", key), resume=True, run_key=key,
    )
    return net, history, key


def text_splits(cfg: SimpleNamespace, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Chapter 04's sentences: training, validation and test frames (``text``, ``label``).
    Quick: Rotten Tomatoes shuffled by ``seed``, cut into ``n_train``, ``n_val`` and the last
    ``n_test``. Full: SST-2's train split (validation cut from it) and its dev split as test."""
    if cfg.dataset == "rotten-tomatoes":
        corpus = data.load_rotten_tomatoes().sample(frac=1.0, random_state=seed).reset_index(drop=True)
        return (corpus.iloc[: cfg.n_train], corpus.iloc[cfg.n_train: cfg.n_train + cfg.n_val],
                corpus.iloc[-cfg.n_test:])
    pool, test_df = data.load_sst2("train"), data.load_sst2("dev")
    val_df = pool.sample(cfg.n_val, random_state=seed)
    train_df = pool.drop(val_df.index)
    if cfg.n_train:
        train_df = train_df.sample(cfg.n_train, random_state=seed)
    return train_df, val_df, test_df


def lora_model(model: nn.Module, r: int, alpha: float, dropout: float = 0.1) -> nn.Module:
    """A Hugging Face sequence classifier with its weights frozen and LoRA adapters (Hu et al.
    2021; ``peft``) of rank ``r`` on the attention's query and value projections. The new head
    and the pooler train in full: the pooler of a sentence-embedding model such as MiniLM was
    never trained, and a frozen random one would cap accuracy (chapter 14)."""
    from peft import LoraConfig, get_peft_model

    saved = ["classifier", "pooler"] if hasattr(getattr(model, "base_model", model), "pooler") \
        else ["classifier"]
    config = LoraConfig(task_type="SEQ_CLS", r=int(r), lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=["query", "value"], modules_to_save=saved)
    with warnings.catch_warnings():  # peft asks transformers a question it has renamed (v6)
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        return get_peft_model(model, config)


def fine_tune_text(cfg: SimpleNamespace, model_name: Any, tokenizer: Any, train_df: pd.DataFrame,
                   seed: int, device: torch.device) -> tuple[text.HFClassifier, train.History]:
    """Chapter 04's fine-tuning run: the pretrained encoder with a new 2-class head, AdamW
    without decay on biases and norms, linear warm-up then linear decay stepped per batch,
    gradient clipping at 1, batches of similar length. Checkpointed under its run key.

    With ``cfg.lora_r`` above 0 (chapter 14), the encoder is frozen and LoRA adapters of rank
    ``lora_r`` (scale ``lora_alpha / lora_r``) on the attention's query and value train, with the
    pooler and the new head, at ``cfg.lora_lr`` (``lora_model``)."""
    env.seed_everything(seed)
    _, net = text.load_classifier(model_name, num_labels=2)
    lora_r = getattr(cfg, "lora_r", 0)
    if cfg.freeze_embeddings and not lora_r:
        net.model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    if lora_r:
        net.model = lora_model(net.model, lora_r, cfg.lora_alpha)
    train_set = text.TokenizedTexts(tokenizer, train_df["text"].tolist(), train_df["label"].tolist(),
                                    cfg.max_length)
    train_loader = text.text_loader(train_set, tokenizer.pad_token_id, cfg.batch_size, shuffle=True,
                                    seed=seed, group_by_length=True)
    optimizer = torch.optim.AdamW(text.decay_param_groups(net, cfg.weight_decay),
                                  lr=cfg.lora_lr if lora_r else cfg.lr)
    total_steps = cfg.num_epochs * len(train_loader)
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_fraction * total_steps),
                                                total_steps)
    run = {**vars(cfg), "seed": seed, "grad_clip": 1.0, "group_by_length": True,
           "schedule": "linear warmup then linear decay, stepped per batch",
           "data": train.fingerprint(train_df["text"], train_df["label"])}
    key = train.run_key(run, code=[text, sys.modules[__name__]])  # configuration + code
    history = train.fit(net, train_loader, num_epochs=cfg.num_epochs, optimizer=optimizer,
                        scheduler=scheduler, scheduler_step="batch", device=device,
                        grad_clip=run["grad_clip"], run_key=key, resume=True,
                        checkpoint_dir=paths.checkpoint_dir("bert", key))
    return net, history


def regularization_data(cfg: SimpleNamespace, profile: str, seed: int) -> SimpleNamespace:
    """Chapter 06's splits of Fashion-MNIST, drawn by ``seed``: ``n_train`` training images (few,
    so that a net overfits), ``n_stop`` for early stopping, ``n_val`` for validation and
    ``n_test`` test images, as normalized tensors ``(x, y)``."""
    x, y = data.load_fashion_mnist("train", profile=profile)
    x_test_all, y_test_all = data.load_fashion_mnist("test", profile=profile)
    rng = np.random.default_rng(seed)
    cuts = np.cumsum([cfg.n_train, cfg.n_stop, cfg.n_val])
    if cuts[-1] > len(y) or cfg.n_test > len(y_test_all):
        raise ValueError(f"n_train + n_stop + n_val = {cuts[-1]} of {len(y)} training images and "
                         f"n_test = {cfg.n_test} of {len(y_test_all)} test images: ask for fewer")
    train_idx, stop_idx, val_idx = np.split(rng.permutation(len(y))[: cuts[-1]], cuts[:-1])
    test_idx = rng.choice(len(y_test_all), cfg.n_test, replace=False)

    def prep(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return ((torch.tensor(images[:, None], dtype=torch.float32) / 255 - 0.286) / 0.353,
                torch.tensor(labels))

    return SimpleNamespace(train=prep(x[train_idx], y[train_idx]), stop=prep(x[stop_idx], y[stop_idx]),
                           val=prep(x[val_idx], y[val_idx]),
                           test=prep(x_test_all[test_idx], y_test_all[test_idx]))


def shift_flip(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Chapter 06's augmentation: shifts of up to 2 pixels and horizontal flips."""
    return train.random_crop_flip(xb, generator, pad=2)


def train_small_cnn(cfg: SimpleNamespace, s: SimpleNamespace, opts: dict[str, Any], seed: int,
                    device: torch.device, loss_fn: Any = None) -> tuple[nn.Module, train.History]:
    """One of chapter 06's runs: a ``SmallCNN`` (no batch norm unless ``opts["batch_norm"]``)
    trained with AdamW at ``cfg.lr`` for ``cfg.num_epochs`` on the few training images of
    ``regularization_data``, with the regularizers named in ``opts`` (``weight_decay``,
    ``dropout``, ``augment``, ``patience``, ``label_smoothing``); ``loss_fn(net)`` builds
    another loss (chapter 06's L1 penalty). ``opts={}`` is the unregularized net, the one
    that overfits (and is over-confident, chapter 07)."""
    env.seed_everything(seed)
    net = models.SmallCNN(dropout=opts.get("dropout", 0.0), batch_norm=opts.get("batch_norm", False))
    loader = train.TensorLoader(*s.train, 64, shuffle=True, seed=seed,
                                transform=shift_flip if opts.get("augment") else None)
    smoothing = opts.get("label_smoothing", 0.0)
    loss = loss_fn(net) if loss_fn else nn.CrossEntropyLoss(label_smoothing=smoothing)
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=opts.get("weight_decay", 0.0))
    history = train.fit(net, loader, train.TensorLoader(*s.stop, 1000), num_epochs=cfg.num_epochs,
                        optimizer=optimizer, loss_fn=loss, early_stopping_patience=opts.get("patience"),
                        device=device, progress=False)
    return net, history


def credit_splits(cfg: SimpleNamespace, seed: int) -> SimpleNamespace:
    """Chapter 07's German-credit splits, stratified by risk and sex: ``X_dev``/``y_dev`` (training
    plus validation), ``X_tr``, ``X_va``, ``X_te`` and their labels (``credit_val`` and
    ``credit_test`` rows from ``cfg``). ``X`` also has chapter 07's ``age group`` column."""
    from sklearn.model_selection import train_test_split

    credit = data.load_german_credit()
    credit["age group"] = np.where(credit["age"] < 25, "under 25", "25 and over")
    X, y = credit.drop(columns=["risk"]), credit["risk"].to_numpy()
    strata = credit["risk"].astype(str) + credit["sex"]
    X_dev, X_te, y_dev, y_te = train_test_split(X, y, test_size=cfg.credit_test, stratify=strata,
                                                random_state=seed)
    X_tr, X_va, y_tr, y_va = train_test_split(X_dev, y_dev, test_size=cfg.credit_val,
                                              stratify=strata.loc[X_dev.index], random_state=seed)
    return SimpleNamespace(X_dev=X_dev, y_dev=y_dev, X_tr=X_tr, y_tr=y_tr, X_va=X_va, y_va=y_va,
                           X_te=X_te, y_te=y_te)


def credit_model(categorical: Sequence[str] = CREDIT_CATEGORICAL,
                 numeric: Sequence[str] = CREDIT_NUMERIC) -> Any:
    """Chapter 07's credit model, untrained: one-hot ``categorical`` columns, standardized
    ``numeric`` ones, logistic regression (a scikit-learn pipeline)."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = make_column_transformer((OneHotEncoder(handle_unknown="ignore"), list(categorical)),
                                   (StandardScaler(), list(numeric)))
    return make_pipeline(prep, LogisticRegression(max_iter=1000))
