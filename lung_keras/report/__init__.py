"""lung_keras.report: a comparison's typed results, `metrics.json`, and `report.md` / `report.html`.

`lung-keras compare` builds a `ComparisonResult` (arms: `lung_keras.stats.summarize_arm`; comparisons:
`lung_keras.stats.summarize_paired`; `add_holm` adds Holm-adjusted p-values), writes it with `write_results`
and passes it to `write_report`, which only renders. `read_results(path)` reads a `metrics.json` back (schema
version 2, or the unversioned first version: the same keys); a required field the file lacks is a `ValueError`
naming it. The records (`lung_keras.report.results`) and their `metrics.json` keys::

    ComparisonResult  {"schema_version": 2, "config": {...}, "alpha": 0.05, "conditions": [Condition],
                       "figures": {caption: relative path}, "notes": [...], "wall_seconds": t (optional)}
    Condition         {"name": "train=all | test", "train", "test_set", "arms": {arm: ArmSummary},
                       "paired": PairedComparison, "ablation": PairedComparison (optional),
                       "comparisons": [PairedComparison with "label"] (optional),
                       "postprocessed": {arm: ArmSummary} (optional)}
    ArmSummary        {"per_seed_mean", "mean", "ci95" (t over seeds), "sd", "n_seeds", "n_images", "seeds",
                       "ci95_images" (bootstrap over images), "per_image": {"ids", "dice", "per_seed"}}
    PairedComparison  {"a", "b", "definition": "b - a", "n", "mean_diff", "median_diff", "ci95" (paired
                       bootstrap), "ci95_t", "wilcoxon_p", "bootstrap_p", "n_better", "n_worse", "n_tied",
                       "seed_diff": {"per_seed", "mean", "ci95"} or null, "wilcoxon_p_holm" and
                       "bootstrap_p_holm" (after add_holm), "label" (optional)}

NaN or null is an undefined number (a t interval over one seed) and shows as `n/a`; Dice values are in [0, 1];
CIs are `[lo, hi]`. `config` holds the settings (scalars and lists as a table, nested values as JSON), among
them the policy as a Keras config (`policy`) and in Albumentations `A.save` form (`policy_albumentations`).

Verdicts (`verdict`, `explain_verdict`): a comparison "helped" only when the
95% CI of the paired per-image difference is above 0, every p-value (Holm
adjusted when present) is below alpha and, with two or more seeds, the
seed-level 95% CI is above 0; "hurt" mirrors it; otherwise "no significant
difference".
"""

from lung_keras.report.render import build_document
from lung_keras.report.render import to_html
from lung_keras.report.render import to_markdown
from lung_keras.report.render import write_report
from lung_keras.report.results import SCHEMA_VERSION
from lung_keras.report.results import ArmSummary
from lung_keras.report.results import ComparisonResult
from lung_keras.report.results import Condition
from lung_keras.report.results import PairedComparison
from lung_keras.report.results import read_results
from lung_keras.report.results import write_results
from lung_keras.report.verdict import HELPED
from lung_keras.report.verdict import HURT
from lung_keras.report.verdict import NO_DIFFERENCE
from lung_keras.report.verdict import add_holm
from lung_keras.report.verdict import comparisons
from lung_keras.report.verdict import explain_verdict
from lung_keras.report.verdict import verdict
