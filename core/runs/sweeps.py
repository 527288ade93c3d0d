"""Sweeps: one config plus a grid of overrides, queued as runs that share a sweep id - and the report's last
lessons as ready-made grids, and the chart rows a sweep page draws from the finished runs.

    pairs = expand(preset_config("cnn"), {"lr": [1e-4, 1e-3], "batch_size": [128, 256]})  # 4 (overrides, config)
    sweep_id, run_ids = submit_sweep(config, grid, submit=library.submit, preset="cnn")

The grid is expanded in a fixed order (itertools.product in the grid's key order, the last key changing
fastest), and every combination is validated - settings, and the model options by building the model on the
"meta" device, which allocates nothing - before the first run is queued, so a bad grid never queues half a
sweep. The run library is not imported here: `submit` is any callable `submit(config, name=..., preset=...,
sweep_id=...) -> run id`, such as `RunLibrary.submit`. Analysis helpers take finished runs as plain dicts
(`record_from_run` makes one from the run library's RunRecord + curves).

A grid written as text - the Sweeps page's value boxes, the CLI's `--param KEY=V1,V2` - is read by one parser
here (`parse_values`, `parse_grid`): values split at commas outside brackets and quotes, each read like a `--set`
value (core.config.parse_value), `all` or `none` for every image of a subset, and an empty value is an error.
"""

from __future__ import annotations

import itertools
import math
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from core.config import (
    ALIASES,
    LEAF_PATHS,
    TrainConfig,
    apply_overrides,
    from_dict,
    get_value,
    parse_value,
    resolve_key,
    to_dict,
)
from core.errors import ConfigError

MAX_RUNS = 100  # a grid larger than this is almost certainly a typo (and hours of queue)
SubmitFn = Callable[..., str]


# --- expansion ------------------------------------------------------------------------------------------------

def format_value(value: Any) -> str:
    """1e-05 -> '1e-05', 0.001 -> '0.001', None -> 'none', (64, 64) -> '[64, 64]'."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def describe(overrides: Mapping[str, Any]) -> str:
    """'lr=0.001, batch_size=128' (or 'base' for no overrides)."""
    return ", ".join(f"{k}={format_value(v)}" for k, v in overrides.items()) or "base"


ALL_IMAGES = ("subset", "test_subset")  # settings where "all" means None: every image


def split_values(text: str) -> list[str]:
    """'1e-4,1e-3' -> ['1e-4', '1e-3']; commas inside [], (), {} or quotes do not split."""
    parts, depth, quote, current = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def parse_values(key: str, text: str) -> list[Any]:
    """One setting's values written as text: 'lr', '1e-4, 1e-3' -> [0.0001, 0.001]. ConfigError for no value at
    all or an empty one (two commas in a row, a trailing comma). Whether each value suits the setting is checked
    when the grid is expanded (`expand`), which names the setting and what it accepts."""
    if not text.strip():
        raise ConfigError(f"{key} needs at least one value, e.g. {key}=1,2 (values separated by commas)")
    raw = [v.strip() for v in split_values(text)]
    if any(not v for v in raw):
        raise ConfigError(f"{key}={text.strip()} has an empty value (two commas in a row, or a trailing comma?)")
    return [None if key in ALL_IMAGES and v.lower() == "all" else parse_value(v) for v in raw]


def parse_grid(items: Iterable[str]) -> dict[str, list[Any]]:
    """['lr=1e-4,1e-3', 'seed=0,1'] -> {'lr': [0.0001, 0.001], 'seed': [0, 1]}: each item KEY=VALUE1,VALUE2,...
    read by `parse_values`. ConfigError for an item without a key or '=', or a key given twice."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"a swept setting is written KEY=VALUE1,VALUE2,..., e.g. lr=1e-4,1e-3; got {item!r}")
        if key in grid:
            raise ConfigError(f"{key} is given twice; list all its values at once ({key}=VALUE1,VALUE2,...)")
        grid[key] = parse_values(key, values)
    return grid


def _check_grid(grid: Mapping[str, Sequence[Any]]) -> list[tuple[str, list[Any]]]:
    if not isinstance(grid, Mapping) or not grid:
        raise ConfigError("a sweep needs at least one setting to vary, e.g. {'lr': [1e-4, 1e-3]}")
    items, paths = [], {}
    for key, values in grid.items():
        path = resolve_key(key)  # ConfigError listing the known settings
        if path in paths:
            raise ConfigError(f"the sweep varies {path!r} twice (as {paths[path]!r} and {key!r}); keep one")
        paths[path] = key
        if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"sweep values for {key!r} must be a non-empty list, got {values!r}")
        seen = [format_value(v) for v in values]
        dupes = sorted({v for v in seen if seen.count(v) > 1})
        if dupes:
            raise ConfigError(f"sweep values for {key!r} repeat {', '.join(dupes)}: each value once")
        items.append((key, list(values)))
    return items


def expand(config: TrainConfig, grid: Mapping[str, Sequence[Any]], *, check_models: bool = True
           ) -> list[tuple[dict[str, Any], TrainConfig]]:
    """Every combination of the grid as (overrides, config), in itertools.product order over the grid's keys.

    Values are applied with config.apply_overrides (any key it accepts: lr, batch_size, epochs, subset, seed,
    flip_p, model.widths, ...). A combination that is not a valid config raises ConfigError naming it; with
    check_models each distinct model is also built on the meta device, so bad model options fail here too.
    """
    items = _check_grid(grid)
    n = math.prod(len(values) for _, values in items)
    if n > MAX_RUNS:
        sizes = " × ".join(str(len(v)) for _, v in items)
        raise ConfigError(f"this sweep would queue {n} runs ({sizes}); at most {MAX_RUNS} - vary fewer values")
    keys = [k for k, _ in items]
    out: list[tuple[dict[str, Any], TrainConfig]] = []
    checked: set[Any] = set()
    for i, combo in enumerate(itertools.product(*(values for _, values in items)), start=1):
        overrides = dict(zip(keys, combo))
        try:
            cfg = apply_overrides(config, overrides)
            if check_models and cfg.model not in checked:
                _check_model(cfg)
                checked.add(cfg.model)
        except ConfigError as e:
            raise ConfigError(f"sweep run {i} of {n} ({describe(overrides)}): {e}") from None
        out.append((overrides, cfg))
    return out


def _check_model(config: TrainConfig) -> None:
    import torch  # deferred: expanding a grid of plain settings needs no torch

    from core.models.catalog import build_for_config

    with torch.device("meta"):  # validates every option and shape; no memory, no weights downloaded
        build_for_config(config, 10, load_pretrained=False)


def new_sweep_id(keys: Iterable[str] = ()) -> str:
    """Short, readable and unique: the varied settings and 8 random hex digits, e.g. 'lr-batch_size-3fa9c1d2'
    (two sweeps share an id with odds of 1 in 4 billion; 6 digits collided in a 300-id test run)."""
    words = [k.rsplit(".", 1)[-1] for k in keys]
    slug = "-".join(w for w in words if w)[:24].strip("-") or "sweep"
    return f"{slug}-{secrets.token_hex(4)}"


def run_name(prefix: str | None, overrides: Mapping[str, Any]) -> str:
    return f"{prefix} · {describe(overrides)}" if prefix else describe(overrides)


def submit_sweep(config: TrainConfig, grid: Mapping[str, Sequence[Any]], submit: SubmitFn, *,
                 name_prefix: str | None = None, preset: str | None = None, sweep_id: str | None = None
                 ) -> tuple[str, list[str]]:
    """Validate the whole grid, then queue one run per combination with a shared sweep id: (sweep_id, run ids).

    submit(config, name=..., preset=..., sweep_id=...) queues one run and returns its id, e.g.
    `open_library().submit` or functools.partial(library.submit, started_by="cli").
    """
    pairs = expand(config, grid)
    sweep_id = sweep_id or new_sweep_id(grid)
    return sweep_id, submit_pairs(pairs, submit, sweep_id=sweep_id, name_prefix=name_prefix, preset=preset)


def submit_pairs(pairs: Sequence[tuple[Mapping[str, Any], TrainConfig]], submit: SubmitFn, *, sweep_id: str,
                 name_prefix: str | None = None, preset: str | None = None) -> list[str]:
    """Queue already expanded (overrides, config) pairs under `sweep_id`; run names default to the preset's."""
    prefix = name_prefix if name_prefix is not None else preset
    return [submit(cfg, name=run_name(prefix, overrides), preset=preset, sweep_id=sweep_id)
            for overrides, cfg in pairs]


# --- the report's last lessons as ready-made sweeps ----------------------------------------------------------------

class Lesson(NamedTuple):
    """A ready-made sweep: queue `grid` over `config`; `labels[key][value]` names special values for charts."""

    config: TrainConfig
    grid: dict[str, list[Any]]
    title: str
    explanation: str
    labels: dict[str, dict[Any, str]]


LR_FACTOR = 30.0  # ~1.5 decades each side of a good LR: clearly too slow / clearly too fast within one short run
# Too high = good × 100 for Adam: measured on CIFAR-10 (CPU), the report's Adam CNN at 1e-2 collapses to chance
# (10.0%: one class for everything) within one epoch, its loss spiking and then stuck at ln(10); at × 30 (3e-3)
# it sat just above chance (11%). Adam rarely reaches NaN - the page says so. SGD keeps × 30.
HIGH_FACTOR = {"adam": 100.0, "adamw": 100.0, "sgd": LR_FACTOR}
MAX_LR = 100.0


class LRScenarios(NamedTuple):
    """The three learning rates of the lesson and the factors that made them from the good one."""

    low: float
    good: float
    high: float
    low_factor: float  # low = good ÷ low_factor
    high_factor: float  # high = good × high_factor (capped at MAX_LR)

    @property
    def grid(self) -> dict[str, list[float]]:
        return {"lr": [self.low, self.good, self.high]}


def lr_scenario_values(good: float, optimizer: str, high_factor: float | None = None) -> LRScenarios:
    """Too low = good ÷ 30; too high = good × HIGH_FACTOR[optimizer] (× 30 for others; `high_factor` overrides
    it), at most MAX_LR; both rounded to two significant digits so run names read well (3.3e-06, not
    3.33333e-06). ConfigError for a good LR that is not a positive number or a factor not above 1."""
    factor = HIGH_FACTOR.get(optimizer, LR_FACTOR) if high_factor is None else float(high_factor)
    if not (isinstance(good, (int, float)) and good > 0 and math.isfinite(good)) or not factor > 1:
        raise ConfigError(f"good_lr must be a positive number and factor > 1, got {good!r} and {high_factor!r}")
    good = float(good)
    low, high = (float(f"{v:.2g}") for v in (good / LR_FACTOR, min(good * factor, MAX_LR)))
    return LRScenarios(low, good, high, LR_FACTOR, factor)


def lr_scenarios(config: TrainConfig, good_lr: float | None = None, factor: float | None = None) -> Lesson:
    """Three runs that differ only in the learning rate: good ÷ 30, good, good × the optimizer's factor
    (lr_scenario_values: × 100 for Adam, × 30 for SGD; `factor` overrides it).

    Why these: a factor of 3 either way is usually inside the flat, good part of an LR range test; 30 is far
    enough outside it to show the two failures within one short run. Too low: each step is tiny - after the
    same epochs the loss has barely fallen and the curve is still climbing. Too high: steps overshoot - with
    SGD (the lab's SGD presets at 0.05-0.2 → 1.5-6) the loss usually blows up - to NaN, or far above where it
    started and stays there (core.train.divergence) - and the run ends as "diverged"; Adam normalizes its steps, so it needs × 100 (1e-4 → 1e-2) before the network collapses to
    predicting one class (chance accuracy).
    """
    lrs = lr_scenario_values(config.optim.lr if good_lr is None else good_lr, config.optim.name, factor)
    low, good, high = lrs.low, lrs.good, lrs.high
    labels = {"lr": {low: "too low", good: "good", high: "too high"}}
    text = (f"Only the learning rate changes. Too low ({format_value(low)}, ÷{lrs.low_factor:g}): every step is "
            "tiny, so after the same number of epochs the network has barely moved - its curves are still climbing. "
            f"Good ({format_value(good)}): steady progress. Too high ({format_value(high)}, ×{lrs.high_factor:g}): "
            "steps overshoot the valley; the loss jumps around, may blow up (to NaN, or far above where it started, and "
            "stay up: the run ends as 'diverged'), or "
            "the network gets stuck predicting one class (chance accuracy).")
    return Lesson(config, lrs.grid, "Learning rate: too low, good, too high", text, labels)


DATA_FRACTIONS = (0.1, 0.25, 0.5, 1.0)


def data_size_lesson(config: TrainConfig, train_size: int, fractions: Sequence[float] = DATA_FRACTIONS) -> Lesson:
    """The same network on 10, 25, 50 and 100% of the `train_size` training images (`subset`, stratified)."""
    if isinstance(train_size, bool) or not isinstance(train_size, int) or train_size < 1:
        raise ConfigError(f"train_size must be the number of training images (>= 1), got {train_size!r}")
    sizes = sorted({max(1, round(train_size * f)) for f in fractions})
    labels = {"subset": {n: f"{n / train_size:.0%}" for n in sizes}}
    text = ("Only the amount of training data changes (the same number of images per class; the test set stays "
            "whole). Fewer images: the network memorizes them - training accuracy stays high while test accuracy "
            "drops, so the train-test gap widens. Each doubling of the data tends to add a similar step of test "
            "accuracy: more data is the most reliable regularizer there is. (Smaller sets also mean fewer steps "
            "per epoch, so those runs are shorter.)")
    return Lesson(config, {"subset": sizes}, "Training-set size", text, labels)


def batch_epochs_lesson(config: TrainConfig, batch_sizes: Sequence[int] | None = None,
                        epochs: Sequence[int] | None = None) -> Lesson:
    """Batch size × epochs: by default a quarter, the same and 4× the config's batch, at half and all its epochs."""
    b, e = config.batch_size, config.epochs
    batches = sorted({min(65536, max(16, v)) for v in (batch_sizes or (b // 4, b, b * 4))})
    epoch_list = sorted({max(1, v) for v in (epochs or (e // 2, e))})
    text = ("An epoch is one pass over the data; a step is one batch. With N training images, a run takes "
            "epochs × N / batch_size optimizer steps: 4× the batch means 4× fewer steps in the same epochs, each "
            "less noisy but no further. At a fixed learning rate, large batches therefore need more epochs (or a "
            "higher learning rate) to catch up, while small batches take longer per epoch on a GPU. More epochs "
            "help until the network starts to overfit (the train-test gap grows).")
    return Lesson(config, {"batch_size": batches, "epochs": epoch_list}, "Batch size and epochs", text, {})


LESSONS = {"lr": lr_scenarios, "data-size": data_size_lesson, "batch-epochs": batch_epochs_lesson}


# --- analysis over finished runs (plain dicts) -----------------------------------------------------------------

_SHORT = {path: key for key, path in {**LEAF_PATHS, **ALIASES}.items()}  # "optim.lr" -> "lr"


def record_from_run(run: Any, curves: Iterable[Any] = ()) -> dict[str, Any]:
    """A plain record from the run library's RunRecord (+ its EpochRows): the analysis helpers' input."""
    rows = [c.to_dict() if hasattr(c, "to_dict") else dict(c) for c in curves]
    return {"run_id": run.id, "name": run.name, "status": run.status, "config": run.config, "sweep_id": run.sweep_id,
            "test_acc": run.test_acc, "best_test_acc": run.best_test_acc, "seconds": run.seconds, "curves": rows,
            "num_classes": getattr(run, "num_classes", None),
            "train_acc": rows[-1].get("train_acc") if rows else None}


def _config(record: Mapping[str, Any]) -> TrainConfig | None:
    cfg = record.get("config")
    return from_dict(cfg) if isinstance(cfg, Mapping) else cfg


def _flat(config: TrainConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def walk(d: Mapping[str, Any], prefix: str) -> None:
        for k, v in d.items():
            if prefix == "model." and k == "options":
                for opt, val in v.items():
                    out[f"model.{opt}"] = val
            elif isinstance(v, Mapping):
                walk(v, f"{prefix}{k}.")
            else:
                out[f"{prefix}{k}"] = v

    walk(to_dict(config), "")
    return out


def _overrides(record: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    given = dict(record.get("overrides") or {})
    cfg = _config(record)
    return {k: given[k] if k in given else (get_value(cfg, k) if cfg is not None else None) for k in keys}


def swept_keys(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The settings that differ between the runs: their "overrides" keys, else found by comparing configs
    (short names where one exists: 'lr', not 'optim.lr')."""
    keys: list[str] = []
    for r in records:
        keys += [k for k in (r.get("overrides") or {}) if k not in keys]
    if keys:
        return keys
    flats = [_flat(c) for c in (_config(r) for r in records) if c is not None]
    order = list(_flat(TrainConfig()))  # config order; model options (not in the default) last
    paths = sorted({p for f in flats for p in f}, key=lambda p: (order.index(p) if p in order else len(order), p))
    return [_SHORT.get(p, p) for p in paths if len({repr(f.get(p)) for f in flats}) > 1]


def _metric(record: Mapping[str, Any], name: str) -> float | None:
    value = record.get(name)
    if value is None and name == "train_acc" and record.get("curves"):
        value = record["curves"][-1].get("train_acc")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _sort_key(value: Any) -> tuple:
    if value is None:
        return (2, 0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0, format_value(value))


def sweep_table(records: Sequence[Mapping[str, Any]], keys: Sequence[str] | None = None,
                metric: str = "test_acc") -> list[dict[str, Any]]:
    """One row per run: run_id, name, status, each swept key's value, test/best/train accuracy, the train-test
    gap, seconds and `is_best` (the highest `metric`; ties: the first). Sorted by the swept values."""
    keys = list(keys) if keys is not None else swept_keys(records)
    rows = []
    for r in records:
        test, train = _metric(r, "test_acc"), _metric(r, "train_acc")
        row = {"run_id": r.get("run_id") or r.get("id"), "name": r.get("name"), "status": r.get("status"),
               **_overrides(r, keys), "test_acc": test, "best_test_acc": _metric(r, "best_test_acc"),
               "train_acc": train, "gap": None if test is None or train is None else train - test,
               "seconds": r.get("seconds"), "is_best": False}
        rows.append(row)
    rows.sort(key=lambda row: tuple(_sort_key(row[k]) for k in keys))
    scored = [row for row in rows if row[metric] is not None]
    if scored:
        max(scored, key=lambda row: row[metric])["is_best"] = True
    return rows


def accuracy_vs(records: Sequence[Mapping[str, Any]], key: str, metric: str = "test_acc",
                labels: Mapping[Any, str] | None = None) -> list[dict[str, Any]]:
    """Rows for "accuracy vs the swept value": sweep_table's rows plus `value` (the key's value), `label` (for a
    categorical axis: the lesson's label or the formatted value) and `series` (the other swept settings, to
    colour several lines)."""
    keys = swept_keys(records)
    keys = keys if key in keys else [key, *keys]
    rows = sweep_table(records, keys, metric)
    others = [k for k in keys if k != key]
    for row in rows:
        value = row[key]
        row["value"] = value
        row["label"] = (labels or {}).get(value) or ("all" if value is None and key == "subset" else
                                                    format_value(value))
        row["series"] = describe({k: row[k] for k in others}) if others else ""
    return rows


def curve_rows(records: Sequence[Mapping[str, Any]], keys: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Long-format learning curves (one row per run per epoch): run, label (its swept values), epoch, train_acc,
    test_acc, train_loss, test_loss - for overlaying the sweep's runs."""
    keys = list(keys) if keys is not None else swept_keys(records)
    out = []
    for r in records:
        label = describe(_overrides(r, keys)) if keys else (r.get("name") or "")
        for c in r.get("curves") or ():
            out.append({"run_id": r.get("run_id") or r.get("id"), "label": label, "epoch": c.get("epoch"),
                        **{m: c.get(m) for m in ("train_acc", "test_acc", "train_loss", "test_loss")}})
    return out
