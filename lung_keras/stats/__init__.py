"""lung_keras.stats: confidence intervals and paired tests for comparing training arms.

numpy, with `scipy.stats` for the t distribution and the Wilcoxon test. Conventions: differences are
`b - a` (compared minus reference, e.g. augmented - baseline); intervals are
`[lo, hi]` lists; results are plain dicts of Python floats (JSON-ready; NaN
marks an undefined value, e.g. the t interval of a single seed).

- `t_ci`, `bootstrap_ci`, `mean_ci`: mean with a 95% CI (t over seeds;
  percentile bootstrap, seeded).
- `paired_differences`: per-image paired difference summary.
- `wilcoxon_signed_rank`: `scipy.stats.wilcoxon`, results as a dict.
- `paired_bootstrap_test`: seeded paired bootstrap CI and p-value.
- `holm`: Holm-Bonferroni adjusted p-values.
- `summarize_arm`, `summarize_paired`: the `lung_keras.report` schema entries.
"""

from lung_keras.stats.ci import bootstrap_ci
from lung_keras.stats.ci import mean_ci
from lung_keras.stats.ci import t_ci
from lung_keras.stats.paired import holm
from lung_keras.stats.paired import paired_bootstrap_test
from lung_keras.stats.paired import paired_differences
from lung_keras.stats.summary import summarize_arm
from lung_keras.stats.summary import summarize_paired
from lung_keras.stats.paired import wilcoxon_signed_rank
