"""Chapter 11b: the one declaration of its settings, time budget and key results."""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    return Workload("11b_pii_encryption", "PII detection and encryption: CPU", 0, 0.0)


CHAPTER = Chapter(
    stem="11b_pii_encryption",
    section="pii",
    quick={
        "n_planted": 400,
        "threshold": 0.3,
        "n_reviews": 1000,
        "k_values": (2, 5, 10, 25),
        "k_main": 5,
        "credit_test": 300,
        "credit_val": 200,
        "seeds": 20,
        "he_size": (64, 10),
    },
    full={
        "n_planted": 2000,
        "threshold": 0.3,
        "n_reviews": 20000,
        "k_values": (2, 5, 10, 25, 50),
        "k_main": 5,
        "credit_test": 300,
        "credit_val": 200,
        "seeds": 20,
        "he_size": (256, 10),
    },
    time_limit_s={"quick": 90, "full": 1800},
    key_results=(
        KeyResult(
            "pii_precision_micro", "PII detection precision", ".3f", "Presidio: measure per entity"
        ),
        KeyResult("enc_tamper_detected", "tampering detected", "", "-"),
    ),
    workload=_workload,
)
