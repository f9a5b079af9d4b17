"""Chapter 04: the one declaration of its settings, time budget and key results.

Quick profile: Three fine-tunes (seeds) of 2,500 sentences fit the chapter's budget.

Full profile: The standard BERT recipe (Devlin et al.; the HF text-classification example): 3
epochs, lr 2e-5, batch 32, 10% warmup then linear decay.
"""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    bert = cfg("bert")
    sst2_train = 67_349  # sentences in SST-2's train split (GLUE)
    n = sst2_train - bert.n_val if bert.dataset == "sst-2" and not bert.n_train else bert.n_train
    return Workload(
        "04_bert_finetuning",
        f"{bert.model}: {n:,} sentences x {bert.num_epochs} epochs x {bert.n_seeds} seeds",
        n * bert.num_epochs * bert.n_seeds,
        flops.text(bert.model, bert.max_length),
    )


CHAPTER = Chapter(
    stem="04_bert_finetuning",
    section="bert",
    quick={
        "dataset": "rotten-tomatoes",
        "model": "minilm-l6",
        "n_train": 2500,
        "n_val": 1000,
        "n_test": 1000,
        "n_seeds": 3,
        "max_length": 64,
        "batch_size": 32,
        "lr": 0.00015,
        "num_epochs": 1,
        "weight_decay": 0.01,
        "warmup_fraction": 0.1,
        "freeze_embeddings": True,
        "target_acc": 0.8,
    },
    full={
        "dataset": "sst-2",
        "model": "bert-base-uncased",
        "n_train": 0,
        "n_val": 2000,
        "n_test": 0,
        "n_seeds": 3,
        "max_length": 128,
        "batch_size": 32,
        "lr": 2e-05,
        "num_epochs": 3,
        "weight_decay": 0.01,
        "warmup_fraction": 0.1,
        "freeze_embeddings": False,
        "target_acc": 0.925,
    },
    time_limit_s={"quick": 150, "full": 3600},
    key_results=(
        KeyResult(
            "bert_test_acc",
            "fine-tuned text model, test accuracy",
            ".3f",
            "BERT-base SST-2 dev: 92.3% (HF example)",
        ),
        KeyResult("bert_vs_baseline", "against TF-IDF + logistic regression", "", "-"),
    ),
    workload=_workload,
)
