"""Typed results of a comparison, as written to and read from `metrics.json`.

`lung_keras.compare` builds a `ComparisonResult`, writes it with `write_results` and hands it to the report;
`read_results` reads a `metrics.json` back, of this schema version or of the first, unversioned one (the same
keys without `schema_version`). A field the schema requires and the file lacks is an error naming the field and
where it is missing, so a typo never renders as "n/a"; fields that are optional by design (the flip ablation, the
leave-one-out comparisons, post-processed Dice, Holm-adjusted p-values, figures, notes, wall time) default to
absent. An undefined number (a t interval over one seed) is NaN or null, and the report shows it as `n/a`.

Every record is also a read-only mapping with the `metrics.json` keys (`result["conditions"][0]["arms"]`), so
code that reads the JSON and code that reads the result read the same names.
"""

import collections.abc
import dataclasses
import json
import math
import pathlib

#: Written as `schema_version`; a file without it is version 1 (the same keys).
SCHEMA_VERSION = 2
_HOLM = "_holm"


class _Record(collections.abc.Mapping):
    """A dataclass readable as the mapping it is written as; `_optional` fields are left out while None."""

    _optional = ()
    _nested = {}  # field -> how to read its JSON value: a record class, or ("dict" | "list", record class)

    @classmethod
    def from_dict(cls, data, where=None):
        """The record of a parsed JSON object; a missing required field raises a `ValueError` naming it."""
        where = where or cls.__name__
        if isinstance(data, cls):
            return data
        if not isinstance(data, collections.abc.Mapping):
            raise ValueError(f"{where} expected a JSON object. Received: {type(data).__name__}")
        values = {}
        for field in dataclasses.fields(cls):
            if field.name in data:
                values[field.name] = _read(cls._nested.get(field.name), data[field.name], _child(where, field.name))
            elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ValueError(f"{where} has no field '{field.name}' (metrics.json schema, lung_keras.report)")
        return cls(**values)

    def _present(self):
        return [f.name for f in dataclasses.fields(self)
                if not (f.name in self._optional and getattr(self, f.name) is None)]

    def to_dict(self):
        """The JSON object (nested records as objects; optional fields that are None left out)."""
        return {name: _write(getattr(self, name)) for name in self._present()}

    def __getitem__(self, key):
        if key in self._present():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self):
        return iter(self._present())

    def __len__(self):
        return len(self._present())


def _child(where, name):
    return f"{where} {name}" if where.endswith(":") else f"{where}.{name}"


def _read(kind, value, where):
    if kind is None or value is None:
        return value
    if isinstance(kind, tuple):
        container, record = kind
        if container == "dict":
            if not isinstance(value, collections.abc.Mapping):
                raise ValueError(f"{where} expected a JSON object. Received: {type(value).__name__}")
            return {k: record.from_dict(v, f"{where}[{k!r}]") for k, v in value.items()}
        return [record.from_dict(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return kind.from_dict(value, where)


def _write(value):
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _write(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_write(v) for v in value]
    return value


@dataclasses.dataclass
class PerImage(_Record):
    """Per-image Dice of one arm: `dice` averaged over seeds, `per_seed` as (n_seeds, n_images)."""

    ids: list
    dice: list
    per_seed: list


@dataclasses.dataclass
class ArmSummary(_Record):
    """One arm on one test set (`lung_keras.stats.summarize_arm`)."""

    per_seed_mean: list  # mean test Dice of each training seed
    mean: float  # mean of per_seed_mean
    ci95: list  # Student-t 95% CI over seeds (NaN / None with one seed)
    sd: float
    n_seeds: int
    n_images: int
    seeds: list  # may be None
    ci95_images: list  # percentile bootstrap over images of the seed-averaged Dice
    per_image: PerImage

    _nested = {"per_image": PerImage}


@dataclasses.dataclass
class SeedDiff(_Record):
    """Seed k of one arm minus seed k of the other: the per-seed differences, their mean and t CI."""

    per_seed: list
    mean: float
    ci95: list


@dataclasses.dataclass
class PairedComparison(_Record):
    """`b - a` paired by image (`lung_keras.stats.summarize_paired`); `label` names a leave-one-out
    comparison; `holm` holds Holm-adjusted p-values by the raw key (`{"wilcoxon_p": ...}`), written as
    `wilcoxon_p_holm` / `bootstrap_p_holm` once `add_holm` ran."""

    a: str
    b: str
    definition: str
    n: int
    mean_diff: float
    median_diff: float
    ci95: list  # paired bootstrap percentile CI of the mean difference
    ci95_t: list
    wilcoxon_p: float
    bootstrap_p: float
    n_better: int
    n_worse: int
    n_tied: int
    seed_diff: SeedDiff  # None when the arms' seeds do not pair
    label: str = None
    holm: dict = dataclasses.field(default_factory=dict)

    _optional = ("label",)
    _nested = {"seed_diff": SeedDiff}

    @classmethod
    def from_dict(cls, data, where=None):
        record = super().from_dict(data, where)
        if record is not data:
            record.holm = {k[: -len(_HOLM)]: v for k, v in data.items() if k.endswith(_HOLM)}
        return record

    def _present(self):
        return [name for name in super()._present() if name != "holm"]

    def to_dict(self):
        return {**super().to_dict(), **{k + _HOLM: v for k, v in self.holm.items()}}

    def __getitem__(self, key):
        if key.endswith(_HOLM) and key[: -len(_HOLM)] in self.holm:
            return self.holm[key[: -len(_HOLM)]]
        return super().__getitem__(key)

    def __iter__(self):
        return iter(self._present() + [k + _HOLM for k in self.holm])

    def __len__(self):
        return len(self._present()) + len(self.holm)

    def holm_p(self, key):
        """The Holm-adjusted `key` p-value (None when `add_holm` did not adjust it)."""
        return self.holm.get(key)


@dataclasses.dataclass
class Condition(_Record):
    """One training condition x one test set: every arm's summary and the comparisons between arms."""

    name: str  # "<train> | <test_set>", the heading
    train: str  # e.g. "train=all healthy-only"
    test_set: str  # e.g. "test (normal)", "extra: shenzhen_dev"
    arms: dict  # arm -> ArmSummary, in display order
    paired: PairedComparison  # the headline comparison
    ablation: PairedComparison = None  # the flip arm (augmented+flip - augmented)
    comparisons: list = None  # more PairedComparisons, each with a `label`
    postprocessed: dict = None  # arm -> ArmSummary of the post-processed predictions

    _optional = ("ablation", "comparisons", "postprocessed")
    _nested = {"arms": ("dict", ArmSummary), "paired": PairedComparison, "ablation": PairedComparison,
               "comparisons": ("list", PairedComparison), "postprocessed": ("dict", ArmSummary)}

    def all_comparisons(self):
        """`(key, comparison)` in order: `paired`, `ablation`, `comparisons[i]`."""
        out = [("paired", self.paired)]
        if self.ablation is not None:
            out.append(("ablation", self.ablation))
        return out + [(f"comparisons[{i}]", p) for i, p in enumerate(self.comparisons or ())]

    @property
    def is_extra(self):
        """Whether the test set is an `--extra-test` folder (another hospital's data)."""
        return str(self.test_set).startswith("extra:")


@dataclasses.dataclass
class ComparisonResult(_Record):
    """A whole comparison: settings, significance level, conditions, figures (captions -> paths relative to
    the report folder), notes, wall time."""

    conditions: list
    config: dict = dataclasses.field(default_factory=dict)
    alpha: float = 0.05
    figures: dict = dataclasses.field(default_factory=dict)
    notes: list = dataclasses.field(default_factory=list)
    wall_seconds: float = None
    schema_version: int = SCHEMA_VERSION

    _optional = ("wall_seconds",)
    _nested = {"conditions": ("list", Condition)}

    @classmethod
    def from_dict(cls, data, where="metrics.json:"):
        version = data.get("schema_version", 1) if isinstance(data, collections.abc.Mapping) else None
        if version is not None and version not in (1, SCHEMA_VERSION):
            raise ValueError(f"{where} schema_version {version} is not one this lung_keras reads (1 or "
                             f"{SCHEMA_VERSION}); upgrade lung_keras. Received: schema_version={version!r}")
        record = super().from_dict(data, where)
        record.schema_version = SCHEMA_VERSION
        return record

    def to_dict(self):
        out = super().to_dict()
        return {"schema_version": out.pop("schema_version"), **out}


def _json_default(value):
    import numpy as np

    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_results(result, path):
    """Writes `result` (a `ComparisonResult`) to `path` as JSON (atomically); returns the path."""
    from lung_keras._io import write_text

    write_text(path, json.dumps(result.to_dict(), indent=2, default=_json_default))
    return path


def read_results(path):
    """The `ComparisonResult` of a `metrics.json` file (either schema version)."""
    path = pathlib.Path(path)
    return ComparisonResult.from_dict(json.loads(path.read_text()), where=f"{path}:")


def is_number(v):
    """A finite int or float (not a bool)."""
    return v is not None and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
