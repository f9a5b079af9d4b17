"""Bands for chapter 09_explainability: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "xai_ig_delta": (
        (0.0, 0.05),
        "issue 14: IG's relative convergence delta at most 0.05 with the "
        "chosen steps; observed <= 1.4e-5 at 50 steps",
    ),
    "xai_deletion_verdict_ig": (
        {"better"},
        "issue 14: at least one method deletes faithfully (lower "
        "AUC than random, interval over 16 images); better at seeds 0-4",
    ),
    "xai_deletion_auc_ig": ((0.15, 0.26), "observed 0.193-0.212 (16 images, 20 steps)"),
    "xai_deletion_auc_random": (
        (0.28, 0.50),
        "observed 0.319-0.444; a random order deletes slowly",
    ),
    "xai_sanity_corr_saliency": (
        (-0.15, 0.3),
        "observed 0.061-0.114 with every layer randomized; the pass mark is 0.5",
    ),
    "xai_sanity_corr_ig": (
        (-0.15, 0.45),
        "observed 0.235-0.283: input x gradient keeps some image "
        "structure, still under the 0.5 pass mark",
    ),
    "xai_sanity_corr_gradcam": (
        (-0.4, 0.7),
        "observed -0.19 to 0.52: Grad-CAM on a 7x7 map of 8 "
        "images is coarse, so its correlation is noisy (failed at seed 1)",
    ),
    "xai_sanity_corr_occlusion": ((-0.15, 0.3), "observed -0.002 to 0.139"),
    "xai_top_feature": (
        {"checking_account", "duration"},
        "checking_account at 4 of seeds 0-4, "
        "duration at seed 3 (permutation importance, 300 test applicants)",
    ),
    "xai_top_feature_shap": (
        {"checking_account"},
        "checking_account at seeds 0-4 (mean |Shapley|)",
    ),
    "xai_imagenet_top1": (
        (0.75, 0.95),
        "0.85 (17 of 20 photos) at seeds 0-4: fixed weights and photos, no seed dependence; "
        "+-2 photos for near ties another CPU's kernels may flip. The published ImageNet top-1 "
        "of EfficientNet-Lite0 is 75.1% (github.com/tensorflow/tpu, "
        "models/official/efficientnet/lite), at the band's lower edge",
    ),
    "xai_sensitivity_verdict": (
        {"better"},
        "IG + SmoothGrad less sensitive than Saliency at seeds 0-4 (0.11-0.14 against "
        "0.39-0.43, 8 images): smoothing lowers sensitivity (Yeh et al. 2019)",
    ),
    "xai_infidelity_gradient_rel": (
        (0.0, 0.75),
        "observed 0.30-0.47 at seeds 0-4: the signed gradient predicts small Gaussian "
        "perturbations to first order; 1 is a fixed random map's infidelity",
    ),
}
