"""Result files of the notebooks: one JSON per (notebook, dataset), written atomically and read back checked.

Schema of ``{output_dir}/{notebook_stem}-{dataset}.json``::

    {
      "dataset": "ml-1m",
      "notebook": "01_table1",
      "parameters": {...},                                   # the notebook's parameters (JSON values)
      "metrics": {"infae": {"test": {"AUC": 0.9457, "HR@10": 31.5, ...}, "val": {...}}, ...},
      "timings_s": {"load": 4.6, ...},                       # seconds; "load" is required
      "kit_version": "0.1.0",
      "created_by": {"python": "3.11.9", "jax": "0.5.3", "numpy": "2.4.6"},
      ...extra keys...
    }

Metric names are ``AUC``, ``HR@k``, ``NDCG@k`` and ``PSP@k`` (``k`` a positive integer); splits are ``val``
and ``test``. HR/NDCG/PSP are stored as the evaluation reports them (percent, like the paper's tables).

:func:`results_table` gathers result files into a markdown table, optionally next to the paper's numbers
(:data:`PAPER_TABLE1`, :data:`PAPER_CODE_RERUN`).

**The recorded results.** The repository keeps one result file per (notebook, dataset) in ``figures/``: the
committed record that ``figures/results.md`` and ``docs/results.md`` are generated from. A new run is merged
into it by :func:`record_results` (:func:`merge_results`): every value the run wrote replaces the recorded one,
and every model the run did not compute is kept, listed under ``carried_over`` with the parameters, kit
version and software versions of the run that computed it. So a run with fewer models (``make reproduce``
trains two competitors, ``make table1`` all five) refreshes its own cells and loses none.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from infae_kit.errors import DataFormatError, ParameterError
from infae_kit.io_utils import atomic_write_json

__all__ = [
    "SPLITS",
    "METRIC_NAME_PATTERN",
    "PAPER_TABLE1",
    "PAPER_CODE_RERUN",
    "PAPER_MODEL_NAMES",
    "write_results",
    "read_results",
    "results_path",
    "results_table",
    "table1_layout",
    "table1_records",
    "check_metric_name",
    "format_metric",
    "markdown_table",
    "metrics_table",
    "CARRIED_OVER_KEY",
    "merge_results",
    "record_results",
    "result_files",
]

SPLITS = ("val", "test")
"""Allowed split names."""
METRIC_NAME_PATTERN = re.compile(r"^(?:AUC|(?:HR|NDCG|PSP)@[1-9][0-9]*)$")
"""Allowed metric names: ``AUC``, ``HR@k``, ``NDCG@k``, ``PSP@k``."""
_RESERVED_KEYS = ("dataset", "notebook", "parameters", "metrics", "timings_s", "kit_version", "created_by")
CARRIED_OVER_KEY = "carried_over"
"""Key of a merged record listing the models kept from earlier runs: ``{model: {"parameters", "kit_version",
"created_by"}}`` of the run that computed each one."""
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

PAPER_MODEL_NAMES = {
    "poprec": "PopRec",
    "bias": "Bias-only",
    "mf": "MF",
    "neumf": "NeuMF",
    "lightgcn": "LightGCN",
    "ease": "EASE",
    "mvae": "MVAE",
    "infae": "∞-AE",
    "infae_distilled": "DISTILL-CF + ∞-AE",
}
"""Display names of the model keys used in :data:`PAPER_TABLE1`."""

_TABLE1_METRICS = ("AUC", "HR@10", "HR@100", "NDCG@10", "NDCG@100", "PSP@10")


def _rows(values: dict[str, tuple[float, ...]]) -> dict[str, dict[str, float]]:
    return {model: dict(zip(_TABLE1_METRICS, row, strict=True)) for model, row in values.items()}


PAPER_TABLE1: dict[str, dict[str, dict[str, float]]] = {
    # Paper Table 1 (test split; HR/NDCG/PSP in percent). The Magazine row's printed metric list omits
    # "NDCG@10" but it has six values per model, in the same order as the other datasets.
    "magazine": _rows(
        {
            "poprec": (0.8436, 14.35, 59.5, 8.42, 19.38, 6.85),
            "bias": (0.8445, 14.36, 59.35, 8.33, 19.31, 6.73),
            "mf": (0.8475, 18.36, 58.94, 13.1, 21.76, 9.24),
            "neumf": (0.8525, 18.35, 59.3, 13.6, 21.13, 9.00),
            "lightgcn": (0.8141, 27.12, 58.00, 22.57, 29.92, 13.2),
            "ease": (0.6673, 26.31, 48.36, 22.84, 28.27, 12.96),
            "mvae": (0.8507, 17.94, 57.3, 12.18, 19.46, 8.81),
            "infae": (0.8539, 27.09, 60.86, 23.06, 30.75, 13.22),
            "infae_distilled": (0.8584, 28.27, 61.78, 23.81, 31.75, 13.76),
        }
    ),
    "ml-1m": _rows(
        {
            "poprec": (0.8332, 13.07, 30.38, 13.84, 19.49, 1.10),
            "bias": (0.8330, 12.93, 29.63, 13.74, 19.13, 1.07),
            "mf": (0.9065, 24.63, 53.26, 25.65, 35.62, 2.41),
            "neumf": (0.9045, 23.25, 51.42, 24.44, 33.93, 2.26),
            "lightgcn": (0.9289, 27.43, 55.61, 28.85, 38.29, 2.72),
            "ease": (0.9069, 28.54, 57.28, 29.88, 40.16, 3.06),
            "mvae": (0.8832, 21.7, 52.29, 22.14, 33.82, 2.42),
            "infae": (0.9457, 31.51, 60.05, 32.82, 42.53, 3.22),
            "infae_distilled": (0.9415, 31.16, 58.28, 32.52, 41.29, 3.15),
        }
    ),
    "douban": _rows(
        {
            "poprec": (0.8945, 11.06, 17.07, 11.63, 12.63, 0.52),
            "bias": (0.8932, 10.71, 16.63, 11.24, 12.27, 0.50),
            "mf": (0.9288, 12.69, 20.29, 13.21, 14.96, 0.63),
            "neumf": (0.9258, 12.79, 19.69, 13.33, 14.39, 0.63),
            "lightgcn": (0.9391, 15.98, 22.38, 16.68, 17.20, 0.86),
            "ease": (0.8570, 17.93, 25.41, 19.48, 19.55, 1.06),
            "mvae": (0.9129, 15.36, 22.82, 16.17, 17.32, 0.87),
            "infae": (0.9523, 23.56, 28.37, 24.94, 23.26, 1.28),
            "infae_distilled": (0.9510, 22.98, 27.20, 24.20, 22.21, 1.24),
        }
    ),
    "netflix": _rows(
        {
            "poprec": (0.9249, 12.14, 28.47, 12.34, 17.79, 1.45),
            "bias": (0.9234, 11.49, 27.66, 11.72, 16.95, 1.28),
            "mf": (0.9234, 11.69, 27.72, 12.04, 17.17, 1.31),
            "neumf": (0.9244, 11.06, 26.76, 11.48, 16.40, 1.21),
            # LightGCN: "Timed Out" in the paper (no values).
            "ease": (0.9418, 26.03, 50.35, 26.83, 35.09, 3.59),
            "mvae": (0.9495, 20.6, 44.53, 20.85, 29.22, 2.77),
            # ∞-AE on Netflix: random user sampling with a budget of 25K users (5.4 %), marked * in the paper.
            "infae": (0.9663, 29.69, 50.88, 30.59, 36.59, 3.75),
            "infae_distilled": (0.9728, 29.57, 49.24, 30.54, 35.58, 3.62),
        }
    ),
}
"""The paper's Table 1: ``{dataset: {model: {metric: value}}}`` (test split; HR/NDCG/PSP in percent)."""

PAPER_CODE_RERUN: dict[str, dict[str, dict[str, float]]] = {
    "ml-1m": _rows({"infae": (0.9457, 31.91, 60.91, 33.39, 43.33, 3.29)}),
    "magazine": _rows({"infae": (0.8535, 25.57, 61.10, 22.13, 30.65, 12.43)}),
}
"""∞-AE rerun with the paper's official code on a 2-core CPU machine (``docs/evaluation.md``), same layout as
:data:`PAPER_TABLE1`."""


# ----------------------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------------------
def check_metric_name(name: Any) -> str:
    """Return ``name`` if it is an allowed metric name, else raise :class:`ParameterError`."""
    if not isinstance(name, str) or not METRIC_NAME_PATTERN.match(name):
        raise ParameterError(
            f"Unknown metric name {name!r}; allowed: 'AUC', 'HR@k', 'NDCG@k', 'PSP@k' with k a positive integer "
            "(e.g. 'HR@10')."
        )
    return name


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME_PATTERN.match(value):
        raise ParameterError(
            f"{what} must be a non-empty name of letters, digits, '_', '-' or '.' (no path separators, not "
            f"starting with '.' or '-'), got {value!r}."
        )
    return value


def _finite_float(value: Any, where: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{where} must be a number, got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not math.isfinite(value):
        raise ParameterError(f"{where} is {value}; metric values and timings must be finite numbers.")
    return value


def _check_metrics(metrics: Any) -> dict[str, dict[str, dict[str, float]]]:
    if not isinstance(metrics, Mapping) or not metrics:
        raise ParameterError(
            "metrics must be a non-empty dict {model: {split: {metric: value}}}, e.g. "
            "{'infae': {'test': {'HR@10': 31.5}}}."
        )
    out: dict[str, dict[str, dict[str, float]]] = {}
    for model, by_split in metrics.items():
        if not isinstance(model, str) or not model:
            raise ParameterError(f"model names in metrics must be non-empty strings, got {model!r}.")
        if not isinstance(by_split, Mapping) or not by_split:
            raise ParameterError(f"metrics[{model!r}] must be a non-empty dict {{split: {{metric: value}}}}.")
        out[model] = {}
        for split, values in by_split.items():
            if split not in SPLITS:
                raise ParameterError(f"metrics[{model!r}] has unknown split {split!r}; allowed: {', '.join(SPLITS)}.")
            if not isinstance(values, Mapping) or not values:
                raise ParameterError(f"metrics[{model!r}][{split!r}] must be a non-empty dict {{metric: value}}.")
            out[model][split] = {}
            for metric, value in values.items():
                try:
                    check_metric_name(metric)
                except ParameterError as exc:
                    raise ParameterError(f"metrics[{model!r}][{split!r}]: {exc}") from None
                out[model][split][metric] = _finite_float(value, f"metrics[{model!r}][{split!r}][{metric!r}]")
    return out


def _check_timings(timings_s: Any) -> dict[str, float]:
    if not isinstance(timings_s, Mapping):
        raise ParameterError(f"timings_s must be a dict {{step: seconds}}, got {type(timings_s).__name__}.")
    if "load" not in timings_s:
        raise ParameterError("timings_s must contain 'load' (seconds spent loading the dataset).")
    out = {}
    for step, seconds in timings_s.items():
        if not isinstance(step, str) or not step:
            raise ParameterError(f"timings_s keys must be non-empty strings, got {step!r}.")
        seconds = _finite_float(seconds, f"timings_s[{step!r}]")
        if seconds < 0:
            raise ParameterError(f"timings_s[{step!r}] is negative ({seconds}); timings are durations in seconds.")
        out[step] = seconds
    return out


def _versions() -> dict[str, str]:
    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    return {"python": platform.python_version(), "jax": version("jax"), "numpy": np.__version__}


# ----------------------------------------------------------------------------------------------------------
# write / read
# ----------------------------------------------------------------------------------------------------------
def results_path(output_dir: str | os.PathLike, notebook_stem: str, dataset: str) -> Path:
    """``{output_dir}/{notebook_stem}-{dataset}.json`` (names validated)."""
    return Path(output_dir) / f"{_check_name(notebook_stem, 'notebook_stem')}-{_check_name(dataset, 'dataset')}.json"


def write_results(
    output_dir: str | os.PathLike,
    notebook_stem: str,
    dataset: str,
    parameters: dict,
    metrics: dict,
    timings_s: dict,
    extra: dict | None = None,
) -> Path:
    """Write a notebook's results atomically to ``{output_dir}/{notebook_stem}-{dataset}.json``.

    Args:
        output_dir: folder (created if missing).
        notebook_stem: notebook file name without extension, e.g. ``"01_table1"``.
        dataset: dataset name, e.g. ``"ml-1m"``.
        parameters: the run's parameters (JSON-serialisable values).
        metrics: ``{model: {split: {metric: value}}}``; splits ``val``/``test``; metric names
            ``AUC``/``HR@k``/``NDCG@k``/``PSP@k``; finite numbers.
        timings_s: ``{step: seconds}``, must contain ``"load"``.
        extra: more top-level keys (must not reuse the schema's keys).

    Returns:
        The path written.

    Raises:
        ParameterError: anything outside the schema (the message names the model/split/metric).
    """
    path = results_path(output_dir, notebook_stem, dataset)
    if not isinstance(parameters, Mapping):
        raise ParameterError(f"parameters must be a dict, got {type(parameters).__name__}.")
    record: dict[str, Any] = {
        "dataset": dataset,
        "notebook": notebook_stem,
        "parameters": dict(parameters),
        "metrics": _check_metrics(metrics),
        "timings_s": _check_timings(timings_s),
        "kit_version": _kit_version(),
        "created_by": _versions(),
    }
    if extra is not None:
        if not isinstance(extra, Mapping):
            raise ParameterError(f"extra must be a dict or None, got {type(extra).__name__}.")
        clash = sorted(set(map(str, extra)) & set(_RESERVED_KEYS))
        if clash:
            raise ParameterError(f"extra reuses reserved key(s) {clash}; rename them.")
        record.update({str(k): v for k, v in extra.items()})
    try:
        return atomic_write_json(path, record)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"Cannot write {path}: a value is not JSON-serialisable or not finite ({exc}); pass plain numbers, "
            "strings, lists and dicts in parameters/extra."
        ) from exc


def _kit_version() -> str:
    import infae_kit

    return infae_kit.__version__


def read_results(path: str | os.PathLike) -> dict:
    """Read a result file written by :func:`write_results`, checking its schema.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: invalid JSON or schema (names the file and what is wrong).
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).") from exc
    try:
        _check_record(record)
    except ParameterError as exc:
        raise DataFormatError(f"{path}: {exc}") from exc
    return record


def _check_record(record: Any) -> None:
    if not isinstance(record, dict):
        raise ParameterError(f"a result file must hold a JSON object, got {type(record).__name__}.")
    missing = [key for key in _RESERVED_KEYS if key not in record]
    if missing:
        raise ParameterError(f"missing key(s) {missing}; was it written by infae_kit.evaluation.results.write_results?")
    _check_name(record["dataset"], "dataset")
    _check_name(record["notebook"], "notebook")
    if not isinstance(record["parameters"], dict):
        raise ParameterError("'parameters' must be an object.")
    _check_metrics(record["metrics"])
    _check_timings(record["timings_s"])


# ----------------------------------------------------------------------------------------------------------
# the recorded results: merge a run into the committed record
# ----------------------------------------------------------------------------------------------------------
def merge_results(recorded: Mapping, new: Mapping) -> dict:
    """Merge a new run's record into the recorded one of the same notebook and dataset.

    Every value the new run wrote wins: a model it computed replaces the recorded model whole. Models of
    ``recorded["metrics"]`` that it did not compute are kept, and so are the keys it did not write in the
    recorded dict-valued entries (``timings_s``, per-model configurations; one level deep). The kept models are
    listed under :data:`CARRIED_OVER_KEY` with the ``parameters``, ``kit_version`` and ``created_by`` of the run
    that computed them (unchanged when they were already carried). Top-level ``parameters``, ``kit_version``
    and ``created_by`` are the new run's.

    Args:
        recorded: the record kept so far (as returned by :func:`read_results`).
        new: the new run's record.

    Returns:
        The merged record (a new dict; neither input is changed).

    Raises:
        ParameterError: the two records are of different notebooks or datasets, or either breaks the schema.
    """
    for record, what in ((recorded, "recorded"), (new, "new")):
        try:
            _check_record(dict(record))
        except ParameterError as exc:
            raise ParameterError(f"merge_results: the {what} record: {exc}") from None
    if (recorded["notebook"], recorded["dataset"]) != (new["notebook"], new["dataset"]):
        raise ParameterError(
            f"merge_results: the records are of different runs ({recorded['notebook']} × {recorded['dataset']} "
            f"and {new['notebook']} × {new['dataset']}); only one notebook's results on one dataset merge."
        )
    carried_before = recorded.get(CARRIED_OVER_KEY) or {}
    provenance = {key: recorded[key] for key in ("parameters", "kit_version", "created_by")}
    kept = [model for model in recorded["metrics"] if model not in new["metrics"]]
    carried = dict(new.get(CARRIED_OVER_KEY) or {})  # a merged record passed as `new` keeps its own provenance
    carried.update({model: carried_before.get(model, provenance) for model in kept})
    merged = {key: value for key, value in new.items() if key != CARRIED_OVER_KEY}
    merged["metrics"] = {**new["metrics"], **{model: recorded["metrics"][model] for model in kept}}
    for key, value in recorded.items():
        if key in ("parameters", "metrics", "kit_version", "created_by", CARRIED_OVER_KEY):
            continue
        if key not in merged:
            merged[key] = value
        elif isinstance(value, Mapping) and isinstance(merged[key], Mapping):
            merged[key] = {**value, **merged[key]}
    if carried:
        merged[CARRIED_OVER_KEY] = carried
    return merged


def record_results(result_path: str | os.PathLike, record_dir: str | os.PathLike) -> Path:
    """Merge one run's result file into the record kept in ``record_dir`` (atomically; see :func:`merge_results`).

    Args:
        result_path: a file written by :func:`write_results`, ``{notebook}-{dataset}.json``.
        record_dir: the folder of recorded results (the repository's ``figures/``); created if missing.

    Returns:
        The path of the record, ``{record_dir}/{notebook}-{dataset}.json``.

    Raises:
        DataFormatError: the run's file or the existing record is not a valid result file.
    """
    new = read_results(result_path)
    target = results_path(record_dir, new["notebook"], new["dataset"])
    if target.resolve() == Path(result_path).resolve():
        return target
    merged = merge_results(read_results(target), new) if target.exists() else new
    return atomic_write_json(target, merged)


def result_files(folder: str | os.PathLike, notebook_stems: Iterable[str]) -> list[Path]:
    """The result files ``{stem}-{dataset}.json`` of the given notebooks in ``folder``, sorted by name.

    Other JSON files in the folder (a search table, a figure's data) are not result files and are left out.
    """
    folder = Path(folder)
    stems = set(notebook_stems)
    return sorted(
        path for path in folder.glob("*.json")
        if not path.name.startswith(".") and path.stem.split("-", 1)[0] in stems and "-" in path.stem
    )


# ----------------------------------------------------------------------------------------------------------
# table
# ----------------------------------------------------------------------------------------------------------
def _metric_sort_key(metric: str) -> tuple[int, int]:
    if metric == "AUC":
        return (0, 0)
    family, k = metric.split("@")
    return ({"HR": 1, "NDCG": 2, "PSP": 3}[family], int(k))


def format_metric(metric: str, value: float | None) -> str:
    """A metric value as the kit's tables print it: AUC with 4 decimals, HR/NDCG/PSP (percent) with 2, ``—``
    when missing."""
    if value is None:
        return "—"
    return f"{value:.4f}" if metric == "AUC" else f"{value:.2f}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: Sequence[str] | None = None) -> str:
    """A Markdown table: one header line, the alignment line and a line per row (cells through ``str``).

    Args:
        header: the column titles.
        rows: the rows, each with as many cells as ``header``.
        align: per column ``"l"`` or ``"r"`` (default: the first column left, the others right).

    Raises:
        ParameterError: a row with another number of cells than the header.
    """
    header = [str(h) for h in header]
    align = list(align) if align is not None else ["l"] + ["r"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    for row in rows:
        cells = [str(c) for c in row]
        if len(cells) != len(header):
            raise ParameterError(f"a table row has {len(cells)} cells but the header has {len(header)}: {cells}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def metrics_table(rows: Mapping[str, Mapping[str, float]], metrics: Sequence[str],
                  reference: Mapping[str, Mapping[str, float]] | None = None, first: str = "model") -> str:
    """A Markdown table of metric rows: ``rows`` maps a label to ``{metric: value}``; a label that ``reference``
    also has gets a second row with its values (e.g. the paper's), labelled ``<label> (paper)``.

    Args:
        rows: ``{label: {metric: value}}``, in the order to print.
        metrics: the columns.
        reference: ``{label: {metric: value}}`` printed under the row of the same label.
        first: the title of the label column.
    """
    lines = []
    for label, values in rows.items():
        lines.append([label] + [format_metric(m, values.get(m)) for m in metrics])
        if reference and label in reference:
            lines.append([f"{label} (paper)"] + [format_metric(m, reference[label].get(m)) for m in metrics])
    return markdown_table([first, *metrics], lines)


def results_table(
    paths_or_dicts: Iterable[str | os.PathLike | Mapping] | str | os.PathLike | Mapping,
    paper_reference: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> str:
    """A markdown table of several result files (rows: dataset × model × notebook; columns: split metric).

    Args:
        paths_or_dicts: result file paths and/or records as returned by :func:`read_results`.
        paper_reference: optional ``{dataset: {model: {metric: value}}}`` (e.g. :data:`PAPER_TABLE1`); test
            cells that have a reference value read ``ours (paper)``.

    Returns:
        Markdown text (header, separator, one line per row).
    """
    if isinstance(paths_or_dicts, (str, os.PathLike, Mapping)):
        paths_or_dicts = [paths_or_dicts]
    records = []
    for item in paths_or_dicts:
        if isinstance(item, Mapping):
            try:
                _check_record(dict(item))
            except ParameterError as exc:
                raise ParameterError(f"result record for {item.get('notebook')!r}/{item.get('dataset')!r}: {exc}") from exc
            records.append(item)
        else:
            records.append(read_results(item))
    if not records:
        raise ParameterError("results_table needs at least one result file or record.")
    columns = sorted(
        {
            (split, metric)
            for record in records
            for by_split in record["metrics"].values()
            for split, values in by_split.items()
            for metric in values
        },
        key=lambda sm: (SPLITS.index(sm[0]), _metric_sort_key(sm[1])),
    )
    header = ["dataset", "model", "notebook"] + [f"{split} {metric}" for split, metric in columns]
    table_rows = []
    rows = sorted(
        ((record["dataset"], model, record["notebook"], by_split) for record in records
         for model, by_split in record["metrics"].items()),
        key=lambda row: row[:3],
    )
    for dataset, model, notebook, by_split in rows:
        reference = ((paper_reference or {}).get(dataset) or {}).get(model) or {}
        cells = [dataset, PAPER_MODEL_NAMES.get(model, model), notebook]
        for split, metric in columns:
            ours = by_split.get(split, {}).get(metric)
            cell = format_metric(metric, ours)
            if split == "test" and metric in reference:
                cell = f"{cell} ({format_metric(metric, reference[metric])})"
            cells.append(cell)
        table_rows.append(cells)
    return markdown_table(header, table_rows, align=["l"] * 3 + ["r"] * len(columns))


TABLE1_MODEL_ORDER = ("poprec", "bias", "mf", "neumf", "lightgcn", "ease", "mvae", "infae", "infae_distilled")
"""The paper's Table 1 column order."""


def table1_records(records: Iterable[Mapping]) -> list[Mapping]:
    """The records that make up Table 1: notebook 02's models and notebook 03's DISTILL-CF + ∞-AE.

    Args:
        records: result records as returned by :func:`read_results`.

    Returns:
        Records to pass to :func:`table1_layout` (notebook 03's reduced to its ``infae_distilled`` model).
    """
    records = list(records)
    return [r for r in records if r["notebook"].startswith("02_")] + [
        {**r, "metrics": {"infae_distilled": r["metrics"]["infae_distilled"]}}
        for r in records if r["notebook"].startswith("03_") and "infae_distilled" in r["metrics"]
    ]


def table1_layout(
    records: Iterable[Mapping],
    dataset: str,
    paper_reference: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    metrics: Sequence[str] = _TABLE1_METRICS,
) -> str:
    """One dataset's test metrics laid out like the paper's Table 1: a row per metric, a column per model.

    Cells read ``ours (paper)`` where the paper has the model on that dataset. Models come in Table 1's order
    (others after it); when several records hold the same model, the first one (in the given order) is used.

    Args:
        records: result records as returned by :func:`read_results`.
        dataset: which dataset's records to lay out.
        paper_reference: e.g. :data:`PAPER_TABLE1`.
        metrics: the rows.

    Returns:
        Markdown text, or ``""`` when no record is for ``dataset``.
    """
    ours: dict[str, dict[str, float]] = {}
    for record in records:
        if record["dataset"] != dataset:
            continue
        for model, by_split in record["metrics"].items():
            if "test" in by_split and model not in ours:
                ours[model] = by_split["test"]
    if not ours:
        return ""
    reference = (paper_reference or {}).get(dataset, {})
    order = [m for m in TABLE1_MODEL_ORDER if m in ours] + sorted(m for m in ours if m not in TABLE1_MODEL_ORDER)
    table_rows = []
    for metric in metrics:
        cells = []
        for model in order:
            cell = format_metric(metric, ours[model].get(metric))
            if metric in reference.get(model, {}):
                cell = f"{cell} ({format_metric(metric, reference[model][metric])})"
            cells.append(cell)
        table_rows.append([metric] + cells)
    return markdown_table(["metric"] + [PAPER_MODEL_NAMES.get(m, m) for m in order], table_rows)
