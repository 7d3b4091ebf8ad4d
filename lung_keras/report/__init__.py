"""lung_keras.report: render a comparison's results dict as `report.md` and `report.html`.

The results dict is the single source of every number: `lung-keras compare`
writes it to `metrics.json` and passes it to `write_report`, which only
renders. Build the entries with `lung_keras.stats.summarize_arm` and
`lung_keras.stats.summarize_paired`; call `add_holm(results)` before writing
`metrics.json` to add Holm-adjusted p-values.

Schema (keys not listed are allowed and ignored; NaN or None means undefined
and is shown as `n/a`; Dice values in [0, 1]; CIs are `[lo, hi]`)::

    {
      "config": {...},                 # settings; scalars/lists as a table, nested dicts as JSON
      "alpha": 0.05,                   # optional significance level for the verdicts (default 0.05)
      "conditions": [                  # one entry per (training condition x test set)
        {
          "name": "train=all | test",  # shown as the heading
          "arms": {                    # in display order; summarize_arm(...)
            "baseline": {
              "per_seed_mean": [..],   # mean test Dice of each training seed
              "mean": x,               # mean of per_seed_mean
              "ci95": [lo, hi],        # Student-t 95% CI over seeds (NaN/None with one seed)
              "sd": s, "n_seeds": k, "n_images": n, "seeds": [..],
              "ci95_images": [lo, hi], # percentile bootstrap over images of the seed-averaged Dice
              "per_image": {"ids": [..], "dice": [..],      # seed-averaged per-image Dice
                            "per_seed": [[..], ..]},        # (n_seeds, n_images)
            },
            "augmented": {...},
          },
          "paired": {                  # summarize_paired(arms[a], arms[b], a, b); may also be a list
            "a": "baseline", "b": "augmented", "definition": "augmented - baseline",
            "n": n,                    # paired images
            "mean_diff": d, "median_diff": m,
            "ci95": [lo, hi],          # paired bootstrap percentile CI of the mean difference
            "ci95_t": [lo, hi],        # t CI of it
            "wilcoxon_p": p, "bootstrap_p": p,
            "wilcoxon_p_holm": p, "bootstrap_p_holm": p,    # optional (add_holm)
            "n_better": i, "n_worse": j, "n_tied": k,
            "seed_diff": {"per_seed": [..], "mean": d, "ci95": [lo, hi]} or None,
          },
          "ablation": {...},           # optional, same shape (e.g. augmented+flip - augmented)
          "comparisons": [{...}],      # optional, more comparisons of the same shape
        },
      ],
      "figures": {"caption": "relative/path.png", ...},    # relative to the report folder
      "notes": ["free text", ...],
      "wall_seconds": t,               # optional
    }

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
from lung_keras.report.verdict import HELPED
from lung_keras.report.verdict import HURT
from lung_keras.report.verdict import NO_DIFFERENCE
from lung_keras.report.verdict import add_holm
from lung_keras.report.verdict import comparisons
from lung_keras.report.verdict import explain_verdict
from lung_keras.report.verdict import verdict
