"""Arms: runs grouped across training seeds, and two arms paired image by image.

Pure functions (no TensorBoard, no HTTP), used by the dashboard's ``/arms`` and
``/arm_compare`` routes.

Grouping rule: a run whose name has a path segment ``<name>-seed<k>`` (``k``
digits) belongs to the arm named by the run with that segment replaced by
``<name>``, as seed ``k``; the last such segment counts. So
``train=all/augmented-seed0`` is seed 0 of arm ``train=all/augmented``, and
``train=all/augmented-seed1/logs/test`` is seed 1 of arm
``train=all/augmented/logs/test``. A run without such a segment is an arm of its
own (seed ``None``). Runs that would clash (a seedless run named like a seeded
arm, or two runs of one arm with the same seed number, e.g. ``-seed1`` and
``-seed01``) are not grouped and are reported as ``ungrouped``.

Pairing rule (`pair_arms`): each arm gives one Dice per image, either the mean
over its seeds (``seed=None``: the mean of the seeds that logged the image and
a finite Dice; ``n`` says how many) or one seed's Dice; ``delta = dice_b -
dice_a``. Every image of either arm is a row; an image of only one arm has
``None`` for the other arm's Dice and for ``delta`` and is also listed in
``only_a`` / ``only_b``. Each arm also names a *display* run, whose predictions
the dashboard shows: the chosen seed's run, or in seed-averaged mode the run of
the smallest seed.
"""

import re

_SEED_SEGMENT_RE = re.compile(r"^(?P<name>.+)-seed(?P<seed>[0-9]{1,9})$")


def split_run(run):
    """`(arm, seed)` of a run name; `(run, None)` when no segment ends in ``-seed<k>``."""
    parts = run.split("/")
    for i in range(len(parts) - 1, -1, -1):
        match = _SEED_SEGMENT_RE.match(parts[i])
        if match:
            arm = "/".join(parts[:i] + [match.group("name")] + parts[i + 1 :])
            return arm, int(match.group("seed"))
    return run, None


def group_arms(runs):
    """Groups run names into arms.

    Args:
      runs: iterable of run names.

    Returns:
      ``{"arms": [{"arm", "members": [{"run", "seed"}, ...]}, ...], "ungrouped": [run, ...]}``,
      arms sorted by name, members by seed.
    """
    members, ungrouped = {}, []
    split = sorted(((split_run(run), run) for run in set(runs)),
                   key=lambda item: (item[0][0], -1 if item[0][1] is None else item[0][1], item[1]))
    seeded_arms = {arm for (arm, seed), _ in split if seed is not None}
    for (arm, seed), run in split:
        taken = {m["seed"] for m in members.get(arm, [])}
        if (seed is None and arm in seeded_arms) or seed in taken:
            ungrouped.append(run)
            continue
        members.setdefault(arm, []).append({"run": run, "seed": seed})
    arms = [
        {"arm": arm, "members": sorted(m, key=lambda x: -1 if x["seed"] is None else x["seed"])}
        for arm, m in sorted(members.items())
    ]
    return {"arms": arms, "ungrouped": sorted(ungrouped)}


def find_arm(grouping, arm):
    """The arm entry of `grouping` named `arm`, or None."""
    return next((a for a in grouping["arms"] if a["arm"] == arm), None)


def _arm_dice(members, seed):
    """Per-image Dice of one arm: ({id: dice}, {id: n}, display member, ids in order)."""
    if seed is None:
        chosen = members
    else:
        chosen = [m for m in members if m["seed"] == seed]
        if not chosen:
            raise KeyError(seed)
    sums, counts, order = {}, {}, []
    for member in chosen:
        for sample in member["samples"]:
            sid = sample["id"]
            if sid not in sums:
                sums[sid], counts[sid] = 0.0, 0
                order.append(sid)
            if sample["dice"] is not None:
                sums[sid] += sample["dice"]
                counts[sid] += 1
    dice = {sid: (sums[sid] / counts[sid] if counts[sid] else None) for sid in order}
    return dice, counts, chosen[0], order


def pair_arms(members_a, members_b, seed=None):
    """Pairs two arms image by image.

    Args:
      members_a, members_b: the arms' runs, each ``{"run", "seed", "step",
        "threshold", "samples": [{"index", "id", "dice"}]}``, sorted by seed.
      seed: None for the seed-averaged Dice, else the seed number to use.

    Returns:
      ``{"a": {"display": {...}, "seeds": [...]}, "b": {...}, "rows": [{"id",
      "dice_a", "dice_b", "delta", "n_a", "n_b", "index_a", "index_b"}],
      "only_a": [...], "only_b": [...]}``; rows in arm A's order, then arm B's
      own images. ``index_*`` is the image's index in the display run (None if
      that run did not log it).

    Raises:
      KeyError: `seed` is given and an arm has no run of that seed.
      ValueError: an arm has no run.
    """
    if not members_a or not members_b:
        raise ValueError("both arms need at least one run")
    dice_a, n_a, display_a, order_a = _arm_dice(members_a, seed)
    dice_b, n_b, display_b, order_b = _arm_dice(members_b, seed)
    index_a = {s["id"]: s["index"] for s in display_a["samples"]}
    index_b = {s["id"]: s["index"] for s in display_b["samples"]}
    rows = []
    for sid in order_a + [s for s in order_b if s not in dice_a]:
        a, b = dice_a.get(sid), dice_b.get(sid)
        rows.append({
            "id": sid,
            "dice_a": a,
            "dice_b": b,
            "delta": None if a is None or b is None else b - a,
            "n_a": n_a.get(sid, 0),
            "n_b": n_b.get(sid, 0),
            "index_a": index_a.get(sid),
            "index_b": index_b.get(sid),
        })

    def side(display, members):
        return {
            "display": {k: display[k] for k in ("run", "seed", "step", "threshold")},
            "seeds": [m["seed"] for m in members],
            "runs": [m["run"] for m in members],
        }

    return {
        "a": side(display_a, members_a if seed is None else [display_a]),
        "b": side(display_b, members_b if seed is None else [display_b]),
        "rows": rows,
        "only_a": [s for s in order_a if s not in dice_b],
        "only_b": [s for s in order_b if s not in dice_a],
    }
