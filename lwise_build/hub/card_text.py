"""What the card says each column and each kind of config is (one home for the wording)."""

COLUMNS = {
    "id": "16 hex digits of the SHA-256 of the canonical PNG; the key shared by every config",
    "image": "the image (PNG bytes embedded in the Parquet file)",
    "label": "ground-truth class (ClassLabel; names in `dataset_info`)",
    "split": "split of the source corpus (train, validation or test)",
    "source": "where the image came from in the source corpus",
    "budget": "perturbation budget eps (norm of the change, pixels in [0,1]); 0 = natural image",
    "gt_logit_before": "guide model's ground-truth logit on the natural image",
    "gt_logit_after": "guide model's ground-truth logit on the enhanced image",
    "l2": "L2 norm of the stored change (uint8 PNG minus natural, pixels in [0,1])",
    "linf": "largest absolute pixel change (pixels in [0,1])",
    "curriculum": "curriculum name",
    "sequence": "participant sequence (one seeded draw per sequence)",
    "trial": "presentation order within the sequence (sort by it)",
    "block": "block number, from 1 in presentation order",
    "phase": "`train` (learning blocks) or `test`",
    "feedback": "whether the participant is told the correct answer",
    "difficulty": "guide's within-class difficulty of the original image (0 easiest, 1 hardest)",
    "selection": "how the image was drawn (easiest fraction of the pool, or random)",
    "reference_id": "`id` of the natural image the metamer matches",
    "reference": "the natural reference image",
    "generator": "model whose activations the metamer matches",
    "layer": "named stage of the generator where activations are matched",
    "layer_depth": "stage index, 0 nearest the input",
    "metamer": "the synthesised metamer (PNG)",
    "loss": "normalised activation distance at the end, measured on the stored uint8 image",
    "spearman": "Spearman rho between metamer and reference activations at the layer",
    "pearson": "Pearson r between metamer and reference activations at the layer",
    "snr_db": "10 log10(|a| / |a - b|) between reference (a) and metamer (b) activations",
    "null_spearman": "best Spearman rho over distinct random pairs of natural training images (the null)",
    "null_pearson": "best Pearson r over the null pairs",
    "null_snr_db": "best SNR over the null pairs",
    "passes": "the generator chooses for the metamer the class it chooses for the reference, and all three "
              "match statistics reach the best null pair",
    "generator_pred": "class the generator assigns to the metamer (forced choice over the corpus's classes)",
    "reference_pred": "class the generator assigns to the natural reference (forced choice over the corpus's classes)",
    "original": "the natural image, exactly as in `default`",
    "enhanced": "the enhanced image, exactly as in `enhanced-<budget>` (the budget in `budget`)",
    "predicted_accuracy": "predicted human accuracy on the image, from its score (see *Calibrated difficulty*)",
}
SCORE_COLUMNS = {
    "gt_logit": "pre-softmax logit of the ground-truth class (full output head)",
    "difficulty": "1 - min-max normalised gt_logit within the image's class (0 easiest, 1 hardest)",
    "difficulty_global": "1 - min-max normalised gt_logit over the whole corpus",
    "pred": "predicted class",
    "prob": "softmax probability of the ground-truth class",
    "margin": "ground-truth logit minus the best other logit",
}
KIND_TEXT = {
    "default": "One row per image of the corpus with the difficulty columns of every scoring model.",
    "enhanced": "Every image of the enhanced splits, perturbed towards its true class by the guide model "
                "at one budget (L-WISE enhancement).",
    "pairs": "One row per enhanced image with its original beside it: `original` as in `default`, `enhanced` "
             "as in `enhanced-<budget>`, the guide's logits before and after and the size of the change.",
    "curriculum": "One row per trial: split `train` holds the learning-phase trials, split `test` the "
                  "test-phase trials, each in presentation order (a participant's whole sequence is both, "
                  "sorted by `sequence`, then `trial`). `image` is the image exactly as shown (already "
                  "enhanced when `budget` > 0).",
    "metamers": "One row per (reference image, generator, layer): a model metamer, its match statistics "
                "and each judge model's prediction.",
    "responses": "One row per trial of the human experiment (`lwise-build analyze`): de-identified responses "
                 "(participants pseudonymised), with inclusion and the reason for any exclusion; the same data "
                 "in the Psych-DS layout are `analysis/psychds/` of the build.",
}
