"""TensorBoard "Segmentation" dashboard: per run and step, each sample's overlay and Dice.

Routes (all GET, under ``/data/plugin/lung_segmentation``):

* ``/index.js`` -- the dashboard (plain ES module, no build step).
* ``/runs`` -- ``{"runs": [{"run", "tags": [{"tag", "max_step", "max_wall_time"}]}]}``.
* ``/steps?run=&tag=`` -- ``{"run", "tag", "steps": [int, ...]}``.
* ``/samples?run=&tag=[&step=]`` -- one step (default: latest) of one run:
  ``{"run", "tag", "step", "wall_time", "threshold", "height", "width",
  "samples": [{"index", "id", "dice"}]}``.
* ``/compare?run_a=&run_b=&tag=[&step=]`` -- two runs joined on sample id. Each
  run uses ``step`` if it has it, else its closest step (default: its latest):
  ``{"tag", "a": {"run", "step"}, "b": {...}, "rows": [{"id", "index_a",
  "index_b", "dice_a", "dice_b", "delta"}], "only_a": [...], "only_b": [...]}``
  with ``delta = dice_b - dice_a``.
* ``/trend?run=&tag=`` -- every sample's Dice at every retained step (one
  manifest per step is read, no PNG): ``{"run", "tag", "steps": [int, ...],
  "samples": [{"id", "dice": [float|null per step]}]}``, samples in the order of
  the latest step (ids first seen earlier follow), ``null`` where a step did not
  log that sample or its Dice was not finite.
* ``/image?run=&tag=&step=&index=&kind=image|mask|prediction`` -- one PNG.
  For a run that logged predictions on a shared test set (``metadata``, "Shared
  images"), the image and mask come from the shared source of the same tag and key.
* ``/arms`` -- runs grouped into arms across seeds (rule: `lung_keras_tb.arms`):
  ``{"tags": [...], "arms": [{"arm", "members": [{"run", "seed", "tags"}], "tags": [...]}],
  "ungrouped": [run, ...]}``.
* ``/arm_compare?tag=&arm_a=&arm_b=[&seed=mean|<k>]`` -- two arms paired image
  by image at each run's latest step of `tag`: seed-averaged Dice (``mean``, the
  default) or seed ``k``'s; ``{"tag", "seed", "a": {"arm", "display": {"run",
  "seed", "step", "threshold"}, "seeds", "runs"}, "b": {...}, "rows": [{"id",
  "dice_a", "dice_b", "delta", "n_a", "n_b", "index_a", "index_b"}], "only_a",
  "only_b"}`` with ``delta = dice_b - dice_a`` (rules: `lung_keras_tb.arms.pair_arms`).
  Images come from ``/image`` with the display run, its step and ``index_*``.

Series holding only shared images and masks (layout ``manifest+images+masks``)
are not listed as runs.

Everything is read through ``context.data_provider``; no route takes a path or a
blob key from the client. Malformed parameters (missing, repeated, control
characters, ``..`` segments, non-integer step/index, unknown kind) get 400;
well-formed names that do not exist get 404. The logic lives in module-level
functions (``list_runs``, ``list_steps``, ``read_samples``, ``read_trend``,
``compare_runs``, ``read_image``, ``list_arms``, ``compare_arms``) that take a data provider and can
be tested without HTTP. One module, a little over 500 lines: each route beside
the logic it serves; the arm rules are pure functions in `lung_keras_tb.arms`.
"""

import importlib.resources
import json
import re

import werkzeug
from werkzeug import wrappers

from tensorboard import context as tb_context
from tensorboard import errors
from tensorboard import plugin_util
from tensorboard.backend import http_util
from tensorboard.data import provider as provider_lib
from tensorboard.plugins import base_plugin

from lung_keras_tb import arms as arms_lib
from lung_keras_tb import metadata

# Ask the data provider for every step it retained; TensorBoard's own
# downsampling (--samples_per_plugin) already bounds what it keeps.
_DOWNSAMPLE = 1_000_000

_INT_RE = re.compile(r"^[0-9]{1,19}$")
_MAX_STEP = 2**63 - 1
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------
# Parameter validation (raise InvalidArgumentError -> HTTP 400)


def _single(args, name, required=True):
    values = args.getlist(name) if hasattr(args, "getlist") else (
        [args[name]] if name in args else []
    )
    if len(values) > 1:
        raise errors.InvalidArgumentError(f"parameter {name!r} given more than once")
    if not values:
        if required:
            raise errors.InvalidArgumentError(f"missing parameter {name!r}")
        return None
    return values[0]


def parse_run(value, name="run"):
    reason = metadata.check_run(value)
    if reason:
        raise errors.InvalidArgumentError(f"bad {name}: {reason}")
    return value


def parse_tag(value):
    reason = metadata.check_tag(value)
    if reason:
        raise errors.InvalidArgumentError(f"bad tag: {reason}")
    return value


def parse_int(value, name, maximum=_MAX_STEP):
    if not isinstance(value, str) or not _INT_RE.match(value) or int(value) > maximum:
        raise errors.InvalidArgumentError(f"bad {name}: expected a non-negative integer")
    return int(value)


def parse_seed(value):
    """None (seed-averaged) for a missing value or ``mean``, else the seed number."""
    if value is None or value == "mean":
        return None
    if not isinstance(value, str) or not re.match(r"^[0-9]{1,9}$", value):
        raise errors.InvalidArgumentError("bad seed: expected 'mean' or a non-negative integer")
    return int(value)


def parse_kind(value):
    if value not in metadata.KINDS:
        raise errors.InvalidArgumentError(f"bad kind: expected one of {', '.join(metadata.KINDS)}")
    return value


# ---------------------------------------------------------------------------
# Logic (data provider in, plain Python out)


def _list_series(provider, ctx, experiment_id, runs=None, tags=None):
    run_tag_filter = None
    if runs is not None or tags is not None:
        run_tag_filter = provider_lib.RunTagFilter(runs=runs, tags=tags)
    return provider.list_blob_sequences(
        ctx,
        experiment_id=experiment_id,
        plugin_name=metadata.PLUGIN_NAME,
        run_tag_filter=run_tag_filter,
    )


def _prediction_series(provider, ctx, experiment_id):
    """``{run: {tag: time series}}`` of the series holding predictions (shared sources left out)."""
    out = {}
    for run, by_tag in _list_series(provider, ctx, experiment_id).items():
        kept = {
            tag: ts
            for tag, ts in by_tag.items()
            if metadata.layout_of(ts.plugin_content)[0] != metadata.LAYOUT_SOURCE
        }
        if kept:
            out[run] = kept
    return out


def _layout(provider, ctx, experiment_id, run, tag):
    """``(layout, source key)`` of one series; 404 if absent."""
    ts = _list_series(provider, ctx, experiment_id, [run], [tag]).get(run, {}).get(tag)
    if ts is None:
        raise errors.NotFoundError(f"no segmentation data for run {run!r}, tag {tag!r}")
    return metadata.layout_of(ts.plugin_content)


def list_runs(provider, ctx, experiment_id):
    """Runs and tags holding segmentation predictions (no blob is read)."""
    mapping = _prediction_series(provider, ctx, experiment_id)
    runs = []
    for run in sorted(mapping):
        tags = [
            {
                "tag": tag,
                "max_step": int(ts.max_step),
                "max_wall_time": float(ts.max_wall_time),
            }
            for tag, ts in sorted(mapping[run].items())
        ]
        if tags:
            runs.append({"run": run, "tags": tags})
    return {"runs": runs}


def _read_sequence(provider, ctx, experiment_id, run, tag):
    """All retained datums of one (run, tag), sorted by step; 404 if none."""
    result = provider.read_blob_sequences(
        ctx,
        experiment_id=experiment_id,
        plugin_name=metadata.PLUGIN_NAME,
        downsample=_DOWNSAMPLE,
        run_tag_filter=provider_lib.RunTagFilter(runs=[run], tags=[tag]),
    )
    datums = result.get(run, {}).get(tag)
    if not datums:
        raise errors.NotFoundError(f"no segmentation data for run {run!r}, tag {tag!r}")
    return sorted(datums, key=lambda d: d.step)


def _pick(datums, step, exact):
    if step is None:
        return datums[-1]
    for d in datums:
        if d.step == step:
            return d
    if exact:
        raise errors.NotFoundError(f"no data at step {step}")
    # Closest step; on a tie the earlier one.
    return min(datums, key=lambda d: (abs(d.step - step), d.step))


def _read_blob(provider, ctx, blob_key):
    try:
        return provider.read_blob(ctx, blob_key=blob_key)
    except errors.InvalidArgumentError as e:
        # TensorBoard's Rust data server (--load_fast) cannot decode blob keys of
        # runs or tags whose names need JSON escaping (a '"' or '\\').
        raise errors.NotFoundError(
            f"TensorBoard could not read this data ({e}); if the run name contains "
            "'\"' or '\\', rename the run directory or start TensorBoard with --load_fast=false"
        ) from e


def _read_manifest(provider, ctx, datum, layout=metadata.LAYOUT_FULL):
    if not datum.values:
        raise errors.NotFoundError(f"step {datum.step} holds no data")
    raw = _read_blob(provider, ctx, datum.values[0].blob_key)
    try:
        manifest = json.loads(bytes(raw).decode("utf-8"))
        samples = manifest["samples"]
        if not isinstance(samples, list):
            raise TypeError("samples")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise errors.NotFoundError(f"step {datum.step} has an unreadable manifest") from e
    # A partially written or truncated sequence only exposes complete samples.
    n = min(len(samples), metadata.num_samples(len(datum.values), layout))
    out = []
    for i, s in enumerate(samples[:n]):
        if not isinstance(s, dict):
            continue
        dice = s.get("dice")
        dice = float(dice) if isinstance(dice, (int, float)) and not isinstance(dice, bool) else None
        out.append({"index": i, "id": str(s.get("id", i)), "dice": dice})
    return manifest, out


def list_steps(provider, ctx, experiment_id, run, tag):
    datums = _read_sequence(provider, ctx, experiment_id, run, tag)
    return {"run": run, "tag": tag, "steps": [int(d.step) for d in datums]}


def read_samples(provider, ctx, experiment_id, run, tag, step=None):
    """Sample ids and Dice of one run at `step` (latest if None); 404 if absent."""
    layout, _ = _layout(provider, ctx, experiment_id, run, tag)
    datums = _read_sequence(provider, ctx, experiment_id, run, tag)
    datum = _pick(datums, step, exact=True)
    manifest, samples = _read_manifest(provider, ctx, datum, layout)
    return {
        "run": run,
        "tag": tag,
        "step": int(datum.step),
        "wall_time": float(datum.wall_time),
        "threshold": float(manifest.get("threshold", 0.5)),
        "height": manifest.get("height"),
        "width": manifest.get("width"),
        "samples": samples,
    }


def read_trend(provider, ctx, experiment_id, run, tag):
    """Each sample's Dice across the retained steps of one run (for sparklines); 404 if absent."""
    layout, _ = _layout(provider, ctx, experiment_id, run, tag)
    datums = _read_sequence(provider, ctx, experiment_id, run, tag)
    per_step = []
    for datum in datums:
        try:
            per_step.append({s["id"]: s["dice"] for s in _read_manifest(provider, ctx, datum, layout)[1]})
        except errors.NotFoundError:
            per_step.append({})  # an unreadable step leaves a gap, not a failed dashboard
    order = list(per_step[-1])
    seen = set(order)
    for by_id in per_step[:-1]:
        for sample_id in by_id:
            if sample_id not in seen:
                seen.add(sample_id)
                order.append(sample_id)
    return {
        "run": run,
        "tag": tag,
        "steps": [int(d.step) for d in datums],
        "samples": [{"id": i, "dice": [by_id.get(i) for by_id in per_step]} for i in order],
    }


def compare_runs(provider, ctx, experiment_id, run_a, run_b, tag, step=None):
    """Joins two runs on sample id at (about) the same step; delta = dice_b - dice_a."""
    picked = {}
    for key, run in (("a", run_a), ("b", run_b)):
        layout, _ = _layout(provider, ctx, experiment_id, run, tag)
        datums = _read_sequence(provider, ctx, experiment_id, run, tag)
        datum = _pick(datums, step, exact=False)
        manifest, samples = _read_manifest(provider, ctx, datum, layout)
        picked[key] = ({"run": run, "step": int(datum.step),
                        "threshold": float(manifest.get("threshold", 0.5))}, samples)
    by_id_b = {s["id"]: s for s in picked["b"][1]}
    ids_a = {s["id"] for s in picked["a"][1]}
    rows = []
    for s in picked["a"][1]:
        other = by_id_b.get(s["id"])
        if other is None:
            continue
        delta = None
        if s["dice"] is not None and other["dice"] is not None:
            delta = other["dice"] - s["dice"]
        rows.append({
            "id": s["id"],
            "index_a": s["index"],
            "index_b": other["index"],
            "dice_a": s["dice"],
            "dice_b": other["dice"],
            "delta": delta,
        })
    return {
        "tag": tag,
        "a": picked["a"][0],
        "b": picked["b"][0],
        "rows": rows,
        "only_a": [s["id"] for s in picked["a"][1] if s["id"] not in by_id_b],
        "only_b": [s["id"] for s in picked["b"][1] if s["id"] not in ids_a],
    }


def _shared_blob(provider, ctx, experiment_id, tag, key, index, kind):
    """The `kind` blob of sample `index` in the shared source of `tag` with `key`."""
    for run, by_tag in sorted(_list_series(provider, ctx, experiment_id, tags=[tag]).items()):
        ts = by_tag.get(tag)
        if key is None or ts is None or metadata.layout_of(ts.plugin_content) != (metadata.LAYOUT_SOURCE, key):
            continue
        datum = _read_sequence(provider, ctx, experiment_id, run, tag)[-1]
        if index < metadata.num_samples(len(datum.values), metadata.LAYOUT_SOURCE):
            return datum.values[metadata.blob_index(index, kind, metadata.LAYOUT_SOURCE)]
    raise errors.NotFoundError(
        f"the {kind}s of tag {tag!r} are stored once, in a shared run (source {key}) that TensorBoard "
        "does not serve: point --logdir at a folder holding both the runs and their shared "
        "'_test_images' folder"
    )


def read_image(provider, ctx, experiment_id, run, tag, step, index, kind):
    """PNG bytes of one sample's image, mask or prediction; 404 if absent."""
    layout, key = _layout(provider, ctx, experiment_id, run, tag)
    datums = _read_sequence(provider, ctx, experiment_id, run, tag)
    datum = _pick(datums, step, exact=True)
    if index >= metadata.num_samples(len(datum.values), layout):
        raise errors.NotFoundError(f"no sample {index} at step {step}")
    if kind in metadata.LAYOUT_KINDS[layout]:
        blob = datum.values[metadata.blob_index(index, kind, layout)]
    elif layout == metadata.LAYOUT_PREDICTIONS:
        blob = _shared_blob(provider, ctx, experiment_id, tag, key, index, kind)
    else:
        raise errors.NotFoundError(f"run {run!r}, tag {tag!r} stores no {kind}")
    data = bytes(_read_blob(provider, ctx, blob.blob_key))
    if not data.startswith(_PNG_MAGIC):
        raise errors.NotFoundError("stored blob is not a PNG")
    return data


def list_arms(provider, ctx, experiment_id):
    """Runs grouped into arms across seeds (`lung_keras_tb.arms.group_arms`), with each arm's tags."""
    series = _prediction_series(provider, ctx, experiment_id)
    grouping = arms_lib.group_arms(series)
    for arm in grouping["arms"]:
        for member in arm["members"]:
            member["tags"] = sorted(series[member["run"]])
        arm["tags"] = sorted({tag for m in arm["members"] for tag in m["tags"]})
    return {
        "tags": sorted({tag for by_tag in series.values() for tag in by_tag}),
        "arms": grouping["arms"],
        "ungrouped": grouping["ungrouped"],
    }


def _load_arm(provider, ctx, experiment_id, series, grouping, arm, tag, seed):
    """The runs of `arm` holding `tag` (only seed `seed` unless None), with their latest manifests."""
    entry = arms_lib.find_arm(grouping, arm)
    if entry is None:
        raise errors.NotFoundError(f"no arm named {arm!r}")
    members = [m for m in entry["members"] if tag in series[m["run"]]]
    if not members:
        raise errors.NotFoundError(f"arm {arm!r} has no data for tag {tag!r}")
    if seed is not None:
        members = [m for m in members if m["seed"] == seed]
        if not members:
            raise errors.NotFoundError(f"arm {arm!r} has no seed {seed} for tag {tag!r}")
    loaded = []
    for m in members:
        layout, _ = metadata.layout_of(series[m["run"]][tag].plugin_content)
        datum = _read_sequence(provider, ctx, experiment_id, m["run"], tag)[-1]
        manifest, samples = _read_manifest(provider, ctx, datum, layout)
        loaded.append({
            "run": m["run"],
            "seed": m["seed"],
            "step": int(datum.step),
            "threshold": float(manifest.get("threshold", 0.5)),
            "samples": samples,
        })
    return loaded


def compare_arms(provider, ctx, experiment_id, tag, arm_a, arm_b, seed=None):
    """Pairs two arms image by image on `tag` (`lung_keras_tb.arms.pair_arms`); 404 if absent."""
    series = _prediction_series(provider, ctx, experiment_id)
    grouping = arms_lib.group_arms(series)
    members_a = _load_arm(provider, ctx, experiment_id, series, grouping, arm_a, tag, seed)
    members_b = _load_arm(provider, ctx, experiment_id, series, grouping, arm_b, tag, seed)
    paired = arms_lib.pair_arms(members_a, members_b, seed)
    paired["a"]["arm"], paired["b"]["arm"] = arm_a, arm_b
    return {"tag": tag, "seed": "mean" if seed is None else seed, **paired}


def read_static(name):
    """The dashboard's static files; `name` is one of a fixed set, never a path."""
    if name not in ("index.js",):
        raise errors.NotFoundError(name)
    return importlib.resources.files("lung_keras_tb").joinpath("static", name).read_bytes()


# ---------------------------------------------------------------------------
# HTTP


def _route(fn):
    """Wraps a handler(self, request) -> (body, mimetype); PublicError -> its code."""

    @wrappers.Request.application
    def handler(self, request):
        try:
            body, mimetype = fn(self, request)
        except errors.PublicError as e:
            return http_util.Respond(
                request, {"error": str(e)}, "application/json", code=e.http_code
            )
        return http_util.Respond(request, body, mimetype)

    handler.__name__ = fn.__name__
    return handler


class SegmentationPlugin(base_plugin.TBPlugin):
    """Segmentation dashboard: gallery, overlays, Dice ranking, run comparison."""

    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context):
        self._data_provider = context.data_provider

    def get_plugin_apps(self):
        return {
            "/index.js": self._serve_js,
            "/runs": self._serve_runs,
            "/steps": self._serve_steps,
            "/samples": self._serve_samples,
            "/trend": self._serve_trend,
            "/compare": self._serve_compare,
            "/image": self._serve_image,
            "/arms": self._serve_arms,
            "/arm_compare": self._serve_arm_compare,
        }

    def is_active(self):
        # TensorBoard already checks data_plugin_names() against list_plugins;
        # this fallback asks the same cheap question (no summary data is read).
        if self._data_provider is None:
            return False
        plugins = self._data_provider.list_plugins(
            tb_context.RequestContext(), experiment_id=""
        )
        return metadata.PLUGIN_NAME in (plugins or ())

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(
            es_module_path="/index.js", tab_name="Segmentation"
        )

    def _env(self, request):
        return (
            plugin_util.context(request.environ),
            plugin_util.experiment_id(request.environ),
        )

    @_route
    def _serve_js(self, request):
        return read_static("index.js"), "application/javascript"

    @_route
    def _serve_runs(self, request):
        ctx, eid = self._env(request)
        return list_runs(self._data_provider, ctx, eid), "application/json"

    @_route
    def _serve_steps(self, request):
        ctx, eid = self._env(request)
        run = parse_run(_single(request.args, "run"))
        tag = parse_tag(_single(request.args, "tag"))
        return list_steps(self._data_provider, ctx, eid, run, tag), "application/json"

    @_route
    def _serve_samples(self, request):
        ctx, eid = self._env(request)
        run = parse_run(_single(request.args, "run"))
        tag = parse_tag(_single(request.args, "tag"))
        step = _single(request.args, "step", required=False)
        step = None if step is None else parse_int(step, "step")
        return read_samples(self._data_provider, ctx, eid, run, tag, step), "application/json"

    @_route
    def _serve_trend(self, request):
        ctx, eid = self._env(request)
        run = parse_run(_single(request.args, "run"))
        tag = parse_tag(_single(request.args, "tag"))
        return read_trend(self._data_provider, ctx, eid, run, tag), "application/json"

    @_route
    def _serve_compare(self, request):
        ctx, eid = self._env(request)
        run_a = parse_run(_single(request.args, "run_a"), "run_a")
        run_b = parse_run(_single(request.args, "run_b"), "run_b")
        tag = parse_tag(_single(request.args, "tag"))
        step = _single(request.args, "step", required=False)
        step = None if step is None else parse_int(step, "step")
        body = compare_runs(self._data_provider, ctx, eid, run_a, run_b, tag, step)
        return body, "application/json"

    @_route
    def _serve_arms(self, request):
        ctx, eid = self._env(request)
        return list_arms(self._data_provider, ctx, eid), "application/json"

    @_route
    def _serve_arm_compare(self, request):
        ctx, eid = self._env(request)
        tag = parse_tag(_single(request.args, "tag"))
        arm_a = parse_run(_single(request.args, "arm_a"), "arm_a")
        arm_b = parse_run(_single(request.args, "arm_b"), "arm_b")
        seed = parse_seed(_single(request.args, "seed", required=False))
        body = compare_arms(self._data_provider, ctx, eid, tag, arm_a, arm_b, seed)
        return body, "application/json"

    @_route
    def _serve_image(self, request):
        ctx, eid = self._env(request)
        run = parse_run(_single(request.args, "run"))
        tag = parse_tag(_single(request.args, "tag"))
        step = parse_int(_single(request.args, "step"), "step")
        index = parse_int(_single(request.args, "index"), "index", maximum=10**6)
        kind = parse_kind(_single(request.args, "kind"))
        return (
            read_image(self._data_provider, ctx, eid, run, tag, step, index, kind),
            "image/png",
        )
