"""Documents generated from the recorded results: ``docs/results.md`` and ``benchmarks/README.md``.

Each document is a Jinja template (``docs/templates/*.md.j2``) rendered with the recorded result files of
``figures/`` and the benchmark records of ``benchmarks/results/``, so that every number it prints is read from
a committed file, never typed. ``python -m infae_kit.runner --gather`` renders them again (the runner also does
after every recorded run); ``tests/test_reports.py`` checks that the committed documents are up to date.

In a template:

* ``rec(notebook, dataset)``: a result record of ``figures/`` (e.g. ``rec("02_closed_form_fit", "ml-1m")``);
  ``test(notebook, dataset, model)`` and ``val(...)``: one model's test or validation metrics.
* ``rebuilt``: ``(notebook, dataset, models)`` whose values were rebuilt from an earlier summary rather than
  read from a run's own file (``created_by.reconstructed_from`` in the record).
* ``data(name)``: any other JSON file of ``figures/`` by stem (``data("03_distill_search-ml-1m")``);
  ``bench(name)``: a benchmark record by stem (``bench("infinite_ae-ml-1m")``).
* ``paper`` and ``paper_code``: :data:`~infae_kit.evaluation.results.PAPER_TABLE1` and
  :data:`~infae_kit.evaluation.results.PAPER_CODE_RERUN`; ``table1(dataset)``: the Table 1 layout of the
  recorded results; ``pivot(cells, model, metric)``: a sweep table (sources × budgets); ``relative(a, b)``: the
  relative difference in % as a number; ``monotone(values)``: whether a sequence never decreases;
  ``largest_drop(values)``: the largest fall from one value to the next (0 for a monotone sequence).
* Filters: ``x|f(2)`` (fixed decimals), ``x|metric("AUC")`` (4 decimals for AUC, else 2), ``x|rel(ref)``
  (signed relative difference in %), ``x|signed(2)``, ``x|gib`` (bytes → GiB), ``x|thousands``,
  ``key|extract(mapping)`` (``mapping[key]``, for ``map``).

A missing record or key is an error that names it (templates are rendered with ``StrictUndefined``).
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from infae_kit.errors import DataFormatError, ParameterError
from infae_kit.evaluation.results import (
    CARRIED_OVER_KEY,
    PAPER_CODE_RERUN,
    PAPER_MODEL_NAMES,
    PAPER_TABLE1,
    read_results,
    table1_layout,
    table1_records,
)
from infae_kit.io_utils import atomic_write_text
from infae_kit.paths import repo_root

__all__ = ["DOCUMENTS", "document_context", "generated_documents", "largest_drop", "render_document",
           "render_documents"]

DOCUMENTS: tuple[tuple[str, str], ...] = (
    ("docs/templates/results.md.j2", "docs/results.md"),
    ("docs/templates/benchmarks.md.j2", "benchmarks/README.md"),
)
"""(template, output) pairs, relative to the repository root."""

_MINUS = "\u2212"


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{where}: expected a number, got {value!r}.")
    return float(value)


def _fixed(value: Any, digits: int = 2) -> str:
    text = f"{_number(value, 'f'):.{digits}f}"
    return text.replace("-", _MINUS, 1) if text.startswith("-") else text


def _metric(value: Any, metric: str) -> str:
    return _fixed(value, 4 if metric == "AUC" else 2)


def _signed(value: Any, digits: int = 2) -> str:
    value = _number(value, "signed")
    return ("+" if value >= 0 else _MINUS) + f"{abs(value):.{digits}f}"


def _relative(value: Any, reference: Any, digits: int = 1) -> str:
    return _signed(_relative_percent(value, reference), digits) + " %"


def _gib(value: Any, digits: int = 2) -> str:
    return f"{_number(value, 'gib') / 2**30:.{digits}f}"


def _extract(key: Any, container: Mapping) -> Any:
    return container[key]


def _thousands(value: Any) -> str:
    return f"{int(round(_number(value, 'thousands'))):,}"


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}).") from exc


def _pivot(cells: Iterable[Mapping], model: str, metric: str = "HR@10", split: str = "test",
           noise: float = 0.0) -> dict[str, dict[int, float]]:
    """``{source: {n_users: value}}`` of a sweep's cells (flat ``{split}_{metric}`` keys, as the sweeps write
    them); the full data's cell has ``n_users`` None and key 0."""
    table: dict[str, dict[int, float]] = {}
    for cell in cells:
        if cell["model"] != model or float(cell.get("noise", 0.0)) != float(noise):
            continue
        table.setdefault(cell["source"], {})[int(cell["n_users"] or 0)] = cell[f"{split}_{metric}"]
    return table


def _monotone(values: Sequence[float]) -> bool:
    """Whether ``values`` never decreases (a curve over growing budgets that only rises or stays level)."""
    return all(later >= earlier for earlier, later in itertools.pairwise(values))


def largest_drop(values: Sequence[float]) -> float:
    """The largest fall from one value of ``values`` to the next (0.0 when it never falls)."""
    return max([0.0] + [earlier - later for earlier, later in itertools.pairwise(values)])


def _relative_percent(value: Any, reference: Any) -> float:
    value, reference = _number(value, "relative"), _number(reference, "relative")
    if reference == 0:
        raise ParameterError("relative: the reference value is 0; a relative difference is undefined.")
    return 100.0 * (value - reference) / abs(reference)


def document_context(record_dir: str | os.PathLike, benchmarks_dir: str | os.PathLike) -> dict[str, Any]:
    """The names a document template can use (see the module docstring).

    Args:
        record_dir: the recorded results (``figures/``): result files and other JSON files.
        benchmarks_dir: the benchmark records (``benchmarks/results/``).

    Returns:
        A dict of template globals.
    """
    record_dir, benchmarks_dir = Path(record_dir), Path(benchmarks_dir)
    records: dict[tuple[str, str], dict] = {}
    others: dict[str, Any] = {}
    for path in sorted(record_dir.glob("*.json")):
        if path.name.startswith("."):
            continue
        raw = _load_json(path)
        if isinstance(raw, dict) and "notebook" in raw and "metrics" in raw:
            record = read_results(path)
            records[(record["notebook"], record["dataset"])] = record
        else:
            others[path.stem] = raw
    benches = {p.stem: _load_json(p) for p in sorted(benchmarks_dir.glob("*.json")) if not p.name.startswith(".")}

    def rec(notebook: str, dataset: str) -> dict:
        try:
            return records[(notebook, dataset)]
        except KeyError:
            known = ", ".join(f"{n}-{d}" for n, d in sorted(records)) or "(none)"
            raise ParameterError(f"no recorded result {notebook}-{dataset}.json in {record_dir}; recorded: {known}.") from None

    def split_of(split: str) -> Callable[[str, str, str], dict]:
        def metrics(notebook: str, dataset: str, model: str) -> dict:
            by_model = rec(notebook, dataset)["metrics"]
            if model not in by_model or split not in by_model[model]:
                raise ParameterError(f"{notebook}-{dataset}.json has no {split} metrics for model {model!r}; "
                                     f"its models: {sorted(by_model)}.")
            return by_model[model][split]
        return metrics

    def data(name: str) -> Any:
        if name not in others:
            raise ParameterError(f"no JSON file {name}.json in {record_dir} (other than result files).")
        return others[name]

    def bench(name: str) -> Any:
        if name not in benches:
            raise ParameterError(f"no benchmark record {name}.json in {benchmarks_dir}; run the benchmark first.")
        return benches[name]

    def table1(dataset: str) -> str:
        text = table1_layout(table1_records(list(records.values())), dataset, PAPER_TABLE1)
        if not text:
            raise ParameterError(f"no Table 1 result (notebook 02 or 03) recorded for {dataset!r}.")
        return text

    rebuilt = []  # (notebook, dataset, models) whose values were rebuilt from an earlier summary, not a run's file
    for (notebook, dataset), record in sorted(records.items()):
        if "reconstructed_from" in record["created_by"]:
            models = sorted(set(record["metrics"]) - set(record.get(CARRIED_OVER_KEY) or {}))
        else:
            models = []
        models += sorted(model for model, info in (record.get(CARRIED_OVER_KEY) or {}).items()
                         if "reconstructed_from" in info["created_by"])
        if models:
            rebuilt.append((notebook, dataset, [PAPER_MODEL_NAMES.get(m, m) for m in models]))

    return {
        "rebuilt": rebuilt,
        "rec": rec, "test": split_of("test"), "val": split_of("val"), "data": data, "bench": bench,
        "paper": PAPER_TABLE1, "paper_code": PAPER_CODE_RERUN, "names": PAPER_MODEL_NAMES,
        "table1": table1, "pivot": _pivot, "relative": _relative_percent, "monotone": _monotone,
        "largest_drop": largest_drop, "max": max, "min": min, "abs": abs, "sorted": sorted, "sum": sum, "round": round,
    }


def render_document(template: str | os.PathLike, context: Mapping[str, Any]) -> str:
    """Render one Markdown template with :func:`document_context`'s names and the module's filters.

    Raises:
        ParameterError: a name, record or key the template uses does not exist (the message names it).
    """
    import jinja2

    template = Path(template)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(f=_fixed, metric=_metric, signed=_signed, rel=_relative, gib=_gib, thousands=_thousands,
                       extract=_extract)
    try:
        return env.get_template(template.name).render(**context)
    except jinja2.UndefinedError as exc:
        raise ParameterError(f"{template}: {exc} (a record or key the template reads is missing).") from exc


def generated_documents(record_dir: str | os.PathLike | None = None, root: str | os.PathLike | None = None,
                        documents: Sequence[tuple[str, str]] = DOCUMENTS) -> dict[Path, str]:
    """The text of every generated document of the repository, rendered from the recorded results.

    Args:
        record_dir: the recorded results (default ``<root>/figures``).
        root: the repository root (default :func:`infae_kit.paths.repo_root`).
        documents: (template, output) pairs relative to ``root``.

    Returns:
        ``{output path: text}``.
    """
    root = Path(root) if root is not None else repo_root()
    context = document_context(record_dir or root / "figures", root / "benchmarks" / "results")
    header = "<!-- Generated by `python -m infae_kit.runner --gather` from {template}; edit that file. -->\n"
    return {root / output: header.format(template=template) + render_document(root / template, context)
            for template, output in documents}


def render_documents(record_dir: str | os.PathLike | None = None, root: str | os.PathLike | None = None,
                     documents: Sequence[tuple[str, str]] = DOCUMENTS) -> list[Path]:
    """Render every generated document (:func:`generated_documents`) and write each one atomically.

    Returns:
        The paths written.
    """
    return [atomic_write_text(path, text) for path, text in generated_documents(record_dir, root, documents).items()]
