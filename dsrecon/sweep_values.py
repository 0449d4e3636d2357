"""The values of a sweep file, each checked in one line before anything is expanded or run: the [sweep] lists, the
types of the [data]/[model]/[train]/[eval] settings, the grid's size, one value per setting across the
[per_model] and [per_dataset] tables (docs/sweeps.md). Used by :mod:`dsrecon.sweep`."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from .config import MAX_RUNS, DataConfig, EvalConfig, ModelConfig, TrainConfig, _same
from .errors import ConfigError
from .train import uses_tau

SECTIONS = ("data", "model", "train", "eval")


def where(path) -> str:
    return f"{path}: " if path else ""


def sweep_list(section: dict, key: str, default, path, allowed=None) -> list:
    """A [sweep] list: a list (a scalar is refused: `seeds = 5` may mean five seeds or seed 5), each value once (a
    repeated one would silently be one run)."""
    v = section.get(key, default)
    if not isinstance(v, list) or (not v and key in ("datasets", "seeds", "taus")):
        raise ConfigError(f"{where(path)}[sweep] {key} must be a non-empty list, e.g. {key} = "
                          f"{_EXAMPLES.get(key, '[...]')}, got {section.get(key)!r}")
    seen = []
    for item in v:
        if any(_same(item, other) for other in seen):
            raise ConfigError(f"{where(path)}[sweep] {key} lists {item!r} twice; give each value once")
        seen.append(item)
    if allowed is not None:
        for item in v:
            if item not in allowed:
                raise ConfigError(f"{where(path)}[sweep] {key}: unknown value {item!r}; allowed: {', '.join(allowed)}")
    return v


_EXAMPLES = {"datasets": '["lorenz"]', "models": '["plrnn"]', "methods": '["gtf"]', "seeds": "[0, 1, 2]",
             "taus": '["auto"]', "baselines": '["esn"]'}
_SECTION_CLASSES = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig}


def _check_types(section: str, values: dict, where: str) -> None:
    """A TOML file states its types: a string for a setting that takes no string (``steps = "3"``) is refused
    instead of read like a --set value."""
    types = {f.name: str(f.type) for f in fields(_SECTION_CLASSES[section])}
    for key, value in values.items():
        if isinstance(value, str) and key in types and "str" not in types[key]:
            raise ConfigError(f"{where}: [{section}] {key} = {value!r} is a string; {section}.{key} takes "
                              f"{types[key].replace(' | None', '')} (write it without quotes)")


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def check_name(name, given: bool, path) -> str:
    """A sweep name is one plain folder name (letters, digits, ``-_.``): ``runs/sweeps/<name>`` stays in there."""
    what = "[sweep] name" if given else "the sweep name (the TOML file's name; set [sweep] name to choose one)"
    if not isinstance(name, str) or not name or set(name) - _NAME_CHARS or name in (".", ".."):
        fixed = "".join(c if c in _NAME_CHARS else "-" for c in Path(str(name)).name).strip(".-") or "my-sweep"
        raise ConfigError(f"{where(path)}{what} must be a plain folder name (letters, digits, '-', '_', '.'; not "
                          f"'.' or '..'), got {name!r}; e.g. name = {fixed!r}, and [sweep] out (or --out) to write "
                          f"somewhere else than runs/sweeps/<name>")
    return name


def merge(base: dict, extra: dict, where: str) -> dict:
    if not isinstance(extra, dict):
        raise ConfigError(f"{where} must be a table of sections ([data], [model], [train], [eval]), got {extra!r}")
    out = {k: dict(v) for k, v in base.items()}
    for section, values in extra.items():
        if section not in SECTIONS:
            raise ConfigError(f"{where}: unknown section [{section}]; allowed: {', '.join(SECTIONS)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: [{section}] must be a table of key = value")
        _check_types(section, values, where)
        out.setdefault(section, {}).update(values)
    return out


def check_max_runs(max_runs) -> int:
    if max_runs is None:
        return MAX_RUNS
    if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1:
        raise ConfigError(f"--max-runs must be a positive integer, got {max_runs!r}")
    return max_runs


def check_grid(source, datasets, models, methods, taus, seeds, baselines, max_runs: int, path) -> None:
    """ConfigError, before the grid is expanded, when it holds more than ``max_runs`` runs: counted from the
    distinct values of each list, each method times the taus only where it uses tau (gtf only with gtf_alpha = "auto"
    set somewhere in the file: an upper bound), plus the baselines once per dataset and seed."""
    def alphas(table):
        return table.get("train", {}).get("gtf_alpha") if isinstance(table, dict) and isinstance(
            table.get("train"), dict) else None
    tables = [source] + [t for k in ("per_model", "per_dataset") if isinstance(source.get(k), dict)
                         for t in source[k].values()]
    alpha = "auto" if "auto" in map(alphas, tables) else None   # the one alpha that makes gtf use tau
    per_seed = sum(len(set(taus)) if uses_tau(m, alpha) else 1 for m in set(methods))
    n_data, n_seeds = len(set(datasets)), len(set(seeds))
    total = n_data * n_seeds * (len(set(models)) * per_seed + len(set(baselines)))
    if total > max_runs:
        grid = (f"{n_data} datasets x {len(set(models))} models x {len(set(methods))} methods x {len(set(taus))} taus x "
                f"{n_seeds} seeds" + (f" plus {len(set(baselines))} baselines" if baselines else ""))
        raise ConfigError(f"{where(path)}the sweep has {total:,} runs ({grid}), more than the limit of {max_runs:,}; "
                          f"shorten its lists, or raise the limit with --max-runs {total} (Python: "
                          f"load_sweep(..., max_runs={total}))")


def one_value(per: dict, path) -> None:
    """ConfigError when a [per_model] and a [per_dataset] table give one key of the same runs two values:
    which one would win is no answer the user gave (the same value in both is accepted)."""
    models = [(k, v) for (t, k), v in per.items() if t == "per_model" and isinstance(v, dict)]
    datasets = [(k, v) for (t, k), v in per.items() if t == "per_dataset" and isinstance(v, dict)]
    for model, m in models:
        for dataset, d in datasets:
            for section in set(m) & set(d):
                if not (isinstance(m[section], dict) and isinstance(d[section], dict)):
                    continue
                for key in set(m[section]) & set(d[section]):
                    a, b = m[section][key], d[section][key]
                    if not _same(a, b):
                        raise ConfigError(f"{where(path)}[per_model.{model}.{section}] {key} = {a!r} and "
                                          f"[per_dataset.{dataset}.{section}] {key} = {b!r} give the runs of {model} "
                                          f"on {dataset} two values; set it in one of the two tables only")


