"""Links that open the Segmentation dashboard on a given view.

The Arms view keeps its state in TensorBoard's URL hash, after the tab name::

    http://127.0.0.1:6006/#lung_segmentation&seg_view=arms&seg_tag=test%2Fabnormal
        &seg_a=train%3Dall%2Fbaseline%2Flogs%2Ftest&seg_b=train%3Dall%2Faugmented%2Flogs%2Ftest
        &seg_seed=mean&seg_sort=abs&seg_image=MCUCXR_0104_1

========== ===================================================================
key        value
========== ===================================================================
seg_view   ``arms`` (the Runs view is the default)
seg_tag    test set tag, e.g. ``test/abnormal`` or ``extra/shenzhen_dev``
seg_a      arm A (runs ``<x>-seed<k>`` form arm ``<x>``, `lung_keras_tb.arms`)
seg_b      arm B; the Dice difference is B - A
seg_seed   ``mean`` (seed-averaged Dice) or a seed number
seg_sort   ``abs`` (largest |difference| first), ``gain`` (biggest B - A
           first), ``loss`` (most negative first), ``id``, ``dice-a``,
           ``dice-b``
seg_image  the selected sample id
========== ===================================================================

Values are percent-encoded (``encodeURIComponent``); missing keys take the
view's defaults. An arm matches exactly or, failing that, as the only arm whose
name ends with ``/<value>``: a link naming arms relative to ``--logdir
<out>/runs`` also opens under a parent logdir. The dashboard
(``static/index.js``) reads and writes the same keys.
"""

import urllib.parse

from lung_keras_tb import metadata

DEFAULT_BASE = "http://127.0.0.1:6006/"
SORTS = ("abs", "gain", "loss", "id", "dice-a", "dice-b")


def arm_view_link(tag, arm_a, arm_b, seed="mean", sort="abs", image=None, base=DEFAULT_BASE):
    """The URL of the Arms view comparing `arm_a` and `arm_b` on `tag`.

    Args:
      tag: test set tag.
      arm_a, arm_b: arm names (see the module docstring for matching).
      seed: ``"mean"`` or a seed number.
      sort: one of `SORTS`.
      image: sample id to select, or None.
      base: TensorBoard's address; ``""`` gives the relative form ``#lung_segmentation&...``.

    Example:
      >>> arm_view_link("test/abnormal", "c/baseline/logs/test", "c/augmented/logs/test", base="")
      '#lung_segmentation&seg_view=arms&seg_tag=test%2Fabnormal&seg_a=c%2Fbaseline%2Flogs%2Ftest&seg_b=c%2Faugmented%2Flogs%2Ftest&seg_seed=mean&seg_sort=abs'
    """
    reason = metadata.check_tag(tag)
    if reason:
        raise ValueError(f"Invalid tag: {reason}. Received: tag={tag!r}")
    for name, value in (("arm_a", arm_a), ("arm_b", arm_b)):
        reason = metadata.check_run(value)
        if reason:
            raise ValueError(f"Invalid {name}: {reason}. Received: {name}={value!r}")
    if sort not in SORTS:
        raise ValueError(f"`sort` must be one of {SORTS}. Received: sort={sort!r}")
    if seed != "mean" and not (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0):
        raise ValueError(f"`seed` must be 'mean' or a non-negative integer. Received: seed={seed!r}")
    params = [("seg_view", "arms"), ("seg_tag", tag), ("seg_a", arm_a), ("seg_b", arm_b),
              ("seg_seed", str(seed)), ("seg_sort", sort)]
    if image is not None:
        params.append(("seg_image", str(image)))
    fragment = "&".join([metadata.PLUGIN_NAME] + [f"{k}={urllib.parse.quote(v, safe='')}" for k, v in params])
    return f"{base}#{fragment}"
