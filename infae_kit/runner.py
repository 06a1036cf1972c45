"""Run notebooks × datasets through papermill and gather their results into one markdown table.

Usage::

    python -m infae_kit.runner --notebooks 01 02 --datasets ml-1m magazine [-p name value ...]
    python -m infae_kit.runner --notebooks 02_closed_form_fit --datasets douban-book -p lambdas "1,5,20"

* A notebook is named by its file stem or its number prefix (``02`` → ``notebooks/02_closed_form_fit.ipynb``).
* Everything is checked *before* a kernel starts: notebook names, dataset names (the registry), parameter names
  against the notebook's ``parameters`` cell (papermill itself only warns on an unknown one), and parameter
  values: the type of the notebook's default, the seed, the numeric lists (``lambdas``, ``budgets``, ...) and
  the names of competitors, samplers and models. A mistake is printed as one clear message and nothing runs
  (exit status 2). Values are parsed as JSON when they parse (``5``, ``0.5``, ``true``), else kept as strings;
  a value may start with ``-`` (``-p lambdas "-1,5"`` reaches the check).
* Executed notebooks go to ``<output-dir>/<stem>-<dataset>.ipynb`` (``$INFAE_RUNS_DIR`` or ``runs/`` by
  default); each notebook writes ``<output-dir>/<stem>-<dataset>.json``. With ``-p validation holdout``
  (notebooks 03–05) both are named ``<stem>-<dataset>-holdout``
  (:func:`infae_kit.data.holdout.dataset_label`), so they never replace the paper protocol's.
* Each run's result file is then merged into the recorded one, ``figures/<stem>-<dataset>.json``
  (:func:`infae_kit.evaluation.results.record_results`): the run refreshes the cells it computed and every
  other recorded model is kept. ``--no-record`` leaves ``figures/`` alone (an exploratory run).
* Last, the recorded results are gathered into ``figures/results.md``, and the documents generated from them
  (``docs/results.md``, ``benchmarks/README.md``) are rendered again. ``--gather`` does only this step.
* A run that fails is reported with the notebook's error (``ename: evalue``) and the head of the failing cell;
  its executed notebook, with the full traceback, is kept as ``<stem>-<dataset>.failed.ipynb``. The other runs
  go on, and the exit status is 1 when any run failed.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from infae_kit.checks import LIST_PARAMETERS, check_seed, is_int, is_real, list_parameter, positive_int
from infae_kit.errors import InfaeError, ParameterError
from infae_kit.evaluation.reports import render_documents
from infae_kit.evaluation.results import record_results, result_files
from infae_kit.io_utils import atomic_write_text
from infae_kit.paths import figures_dir, repo_root, runs_dir

__all__ = [
    "NOTEBOOKS_DIR",
    "PARAMETER_CHECKS",
    "find_notebook",
    "notebook_parameters",
    "parse_value",
    "check_parameters",
    "check_parameter_values",
    "failure_report",
    "run_label",
    "run_notebook",
    "gather_results",
    "main",
]

log = logging.getLogger(__name__)

NOTEBOOKS_DIR = repo_root() / "notebooks"
_SOURCE_LINES = 2  # first lines of the failing cell shown in a failure report


def find_notebook(name: str, notebooks_dir: Path = NOTEBOOKS_DIR) -> Path:
    """Resolve ``02``, ``02_closed_form_fit`` or a path to a notebook ``.ipynb``."""
    p = Path(name)
    if p.suffix == ".ipynb" and p.exists():
        return p.resolve()
    candidates = sorted(notebooks_dir.glob("*.ipynb"))
    exact = [c for c in candidates if c.stem == name]
    if exact:
        return exact[0]
    prefixed = [c for c in candidates if c.stem.split("_", 1)[0] == name]
    if len(prefixed) == 1:
        return prefixed[0]
    known = ", ".join(c.stem for c in candidates) or "(none)"
    raise ParameterError(f"no notebook matches {name!r} in {notebooks_dir}; known notebooks: {known}")


def notebook_parameters(path: Path) -> dict[str, Any]:
    """Parameters declared in the notebook's cell tagged ``parameters``: name → default value.

    Defaults are Python literals (``"magazine"``, ``42``, ``None``); one that is not a literal is kept as its
    source text.
    """
    import papermill

    params = papermill.inspect_notebook(str(path))
    if not params:
        raise ParameterError(f"{path.name} has no cell tagged 'parameters'")
    out = {}
    for name, info in params.items():
        text = info.get("default")
        try:
            out[name] = ast.literal_eval(text) if isinstance(text, str) else text
        except (ValueError, SyntaxError):
            out[name] = text
    return out


def parse_value(text: str) -> Any:
    """``"5"`` → 5, ``"0.5"`` → 0.5, ``"true"`` → True, anything else stays a string."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text


def check_parameters(path: Path, parameters: dict[str, Any]) -> None:
    """Refuse parameter names the notebook does not declare (papermill would only warn)."""
    declared = notebook_parameters(path)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ParameterError(
            f"{path.name} has no parameter(s) {', '.join(map(repr, unknown))}. "
            f"Its parameters are: {', '.join(sorted(declared))}."
        )


def _dataset(value: Any) -> Any:
    from infae_kit.data.registry import check_dataset_name

    return check_dataset_name(value)


def _validation(value: Any) -> Any:
    from infae_kit.data.holdout import check_validation_protocol

    return check_validation_protocol(value)


def _competitors(value: Any) -> Any:
    from infae_kit.models.competitors import parse_competitor_names

    return parse_competitor_names(value)


def _names(canonical: str, parameter: str) -> Callable[[Any], Any]:
    def check(value: Any) -> list[str]:
        from infae_kit.checks import parse_list
        from infae_kit.experiments import sweeps

        return [getattr(sweeps, canonical)(v) for v in parse_list(value, str, parameter)]

    return check


PARAMETER_CHECKS: dict[str, Callable[[Any], Any]] = {
    "dataset": _dataset,
    "validation": _validation,
    "seed": check_seed,
    "competitors": _competitors,
    "samplers": _names("canonical_source", "samplers"),
    "models": _names("canonical_model", "models"),
    "budget": lambda value: positive_int("budget", value),
    **{name: (lambda value, name=name: list_parameter(name, value)) for name in LIST_PARAMETERS},
}
"""Checks of parameter values by name, run before a kernel starts (the same name means the same thing in every
notebook). Each raises a :class:`~infae_kit.errors.InfaeError` naming the parameter and the value."""

_LIST_WORDS = {"arcf_budgets": ("none",)}  # words a list parameter takes besides numbers (notebook 04: no AR-CF)


def _type_error(value: Any, default: Any) -> str | None:
    """Why ``value`` cannot replace ``default`` (a Python literal) in the parameters cell, or ``None``."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if is_int(default):
        return None if is_int(value) else "an integer"
    if isinstance(default, float):
        return None if is_real(value) else "a number"
    return None


def check_parameter_values(path: Path, parameters: dict[str, Any]) -> None:
    """Check the values a run would inject into ``path``'s parameters cell, before any kernel starts.

    A value must have the type of the notebook's default (an integer for ``42``, a number for ``0.8``, true or
    false for ``True``; any value where the default is a string or ``None``), and the parameters of
    :data:`PARAMETER_CHECKS` must pass their check.

    Raises:
        ParameterError, UnknownDatasetError: the first value that cannot work, named with its notebook.
    """
    defaults = notebook_parameters(path)
    for name, value in parameters.items():
        if name not in defaults or value is None:
            continue
        default = defaults[name]
        expected = _type_error(value, default)
        if expected is not None:
            raise ParameterError(
                f"{path.stem}: parameter {name} must be {expected} (its default is {default!r}), got {value!r}."
            )
        text = str(value).strip().lower()
        if name in LIST_PARAMETERS and ((default == "" and text == "") or text in _LIST_WORDS.get(name, ())):
            continue  # "" where the notebook's default is "" means its preset
        check = PARAMETER_CHECKS.get(name)
        if check is not None:
            try:
                check(value)
            except InfaeError as err:
                raise type(err)(f"{path.stem}: {err}") from None


def _failing_line(traceback: Sequence[str], cell_source: str) -> tuple[int, str] | None:
    """``(line number, text)`` of the failing line of the cell, read from IPython's ``Cell In[n], line L``."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(traceback or ()))
    match = re.search(r"Cell In\[\d*\], line (\d+)", text)
    if match is None:
        return None
    number = int(match.group(1))
    lines = cell_source.splitlines()
    return (number, lines[number - 1].strip()) if 0 < number <= len(lines) else None


def failure_report(label: str, exc: BaseException, executed: Path | None = None) -> str:
    """What a failed run prints: the notebook's error (``ename: evalue``), the failing cell's first lines and
    failing line, and where the executed notebook with the full traceback is.

    Args:
        label: ``"<notebook> × <dataset>"``.
        exc: the exception papermill raised (a ``PapermillExecutionError`` carries the notebook's own error),
            or any other.
        executed: the executed notebook kept for inspection, if any.
    """
    ename = getattr(exc, "ename", None)
    if ename is not None:
        evalue = str(getattr(exc, "evalue", "")).strip()
        lines = [f"FAILED {label}: {ename}: {evalue}" if evalue else f"FAILED {label}: {ename}"]
        cell = str(getattr(exc, "source", ""))
        source = [line for line in cell.splitlines() if line.strip()]
        count = getattr(exc, "exec_count", None)
        where = f"cell [{count}]" if count is not None else "the cell"
        if source:
            lines.append(f"  {where} begins:")
            lines += [f"    {line}" for line in source[:_SOURCE_LINES]]
        failing = _failing_line(getattr(exc, "traceback", ()), cell)
        if failing is not None:
            lines.append(f"  failing line {failing[0]} of {where}: {failing[1]}")
    else:
        text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        lines = [f"FAILED {label}: {type(exc).__name__}" + (f": {text}" if text else "")]
    if executed is not None and executed.exists():
        lines.append(f"  full traceback: {executed}")
    return "\n".join(lines)


def run_label(dataset: str | None, parameters: dict[str, Any]) -> str:
    """``"<stem>"`` + this of a run's executed notebook and result file: ``""`` without a dataset, else
    ``"-<dataset>"``, or ``"-<dataset>-holdout"`` when ``parameters`` set ``validation`` to ``"holdout"`` (the
    name the notebook files its results under, :func:`infae_kit.data.holdout.dataset_label`)."""
    from infae_kit.data.holdout import dataset_label

    if dataset is None:
        return ""
    return f"-{dataset_label(dataset, parameters.get('validation') or 'paper')}"


def run_notebook(path: Path, output_dir: Path, parameters: dict[str, Any], *, dataset: str | None = None,
                 kernel_name: str = "python3", log_output: bool = False) -> Path:
    """Execute one notebook with papermill; returns the executed notebook's path.

    The executed notebook is ``<stem><run_label>.ipynb`` (:func:`run_label`). On failure the partly executed
    notebook is kept as ``<stem><run_label>.failed.ipynb`` next to where the executed one would have gone, and
    papermill's exception is raised (see :func:`failure_report`).
    """
    import papermill

    params = dict(parameters)
    if dataset is not None:
        params["dataset"] = dataset
    params["output_dir"] = str(output_dir.resolve())
    check_parameters(path, params)
    output_dir.mkdir(parents=True, exist_ok=True)
    out = output_dir / f"{path.stem}{run_label(dataset, params)}.ipynb"
    tmp = output_dir / f".{out.stem}.running.ipynb"
    failed = output_dir / f"{out.stem}.failed.ipynb"
    try:
        papermill.execute_notebook(str(path), str(tmp), parameters=params, kernel_name=kernel_name,
                                   cwd=str(path.parent), progress_bar=False, log_output=log_output)
    except BaseException:
        if tmp.exists():
            tmp.replace(failed)
        raise
    tmp.replace(out)
    failed.unlink(missing_ok=True)
    return out


def notebook_stems(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[str]:
    """Stems of the notebooks the runner knows (``01_ntk_derivation``, ...)."""
    return sorted(p.stem for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))


def gather_results(record_dir: Path, table_path: Path | None = None) -> str:
    """Gather every recorded result file in ``record_dir`` into one markdown document.

    The document holds Table 1 per dataset (notebook 02's models and notebook 03's DISTILL-CF column, next to
    the paper's cells), then every model of every result file, one section per notebook, and which models a
    record carries over from an earlier run.

    Args:
        record_dir: the folder of recorded results (``figures/``).
        table_path: where to write the document (atomically); ``None`` only returns it.

    Returns:
        The markdown text.

    Raises:
        ParameterError: no result file in ``record_dir``.
        DataFormatError: a result file is damaged (named in the message).
    """
    from infae_kit.evaluation.results import (CARRIED_OVER_KEY, PAPER_MODEL_NAMES, PAPER_TABLE1, read_results,
                                              result_files, results_table, table1_layout, table1_records)

    files = result_files(record_dir, notebook_stems())
    if not files:
        raise ParameterError(f"no result files (<notebook>-<dataset>.json) in {record_dir}")
    records = [read_results(p) for p in files]
    text = (
        "# Reproduced results\n\n"
        "Generated by `python -m infae_kit.runner --gather` from the recorded result files in `figures/` "
        f"({len(files)} files). Test cells read `ours (paper)`: the paper's Table 1 in brackets. What each "
        "number means and what it is compared with: `docs/results.md`.\n\n"
    )
    # Table 1: the models of notebook 02, and DISTILL-CF + ∞-AE from notebook 03
    in_table1 = table1_records(records)
    for dataset in sorted({r["dataset"] for r in in_table1}):
        layout = table1_layout(in_table1, dataset, PAPER_TABLE1)
        if layout:
            text += f"## Table 1, {dataset} (test; ours (paper))\n\n{layout}\n"
    for notebook in sorted({r["notebook"] for r in records}):
        in_notebook = [r for r in records if r["notebook"] == notebook]
        text += f"## {notebook}: every model\n\n" + results_table(in_notebook, paper_reference=PAPER_TABLE1)
        carried = [
            f"{r['dataset']}: " + ", ".join(
                f"{PAPER_MODEL_NAMES.get(model, model)} ({_describe_parameters(info['parameters'], r['parameters'])})"
                for model, info in r[CARRIED_OVER_KEY].items())
            for r in in_notebook if r.get(CARRIED_OVER_KEY)
        ]
        if carried:
            text += ("\nKept from an earlier run with other parameters (the record's `carried_over`): "
                     + "; ".join(carried) + ".\n")
        rebuilt = sorted(
            {r["dataset"] for r in in_notebook if "reconstructed_from" in r["created_by"]}
            | {r["dataset"] for r in in_notebook
               for info in (r.get(CARRIED_OVER_KEY) or {}).values() if "reconstructed_from" in info["created_by"]}
        )
        if rebuilt:
            text += ("\nRebuilt from an earlier summary, not from a run's own file (values rounded as printed "
                     "there; `reconstructed_from` in the record says which): " + ", ".join(rebuilt) + ".\n")
        text += "\n"
    if table_path is not None:
        atomic_write_text(table_path, text)
    return text


def _describe_parameters(parameters: dict[str, Any], current: dict[str, Any]) -> str:
    """The parameters of ``parameters`` that differ from ``current``, as ``name=value`` (or "same parameters")."""
    differ = [f"{name}={value}" for name, value in parameters.items() if current.get(name) != value]
    return ", ".join(differ) if differ else "same parameters"


def _split_parameters(argv: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Take ``-p NAME VALUE`` / ``--parameter NAME VALUE`` out of ``argv`` verbatim.

    argparse reads a value that starts with ``-`` (``"-1,5"``) as an option; taken out here, every value
    reaches the parameter checks as written.
    """
    rest, pairs, i = [], [], 0
    while i < len(argv):
        token = argv[i]
        if token in ("-p", "--parameter"):
            if i + 2 >= len(argv):
                raise ParameterError(f"{token} needs a name and a value, e.g. -p lambdas 1,5,20.")
            pairs.append((argv[i + 1], argv[i + 2]))
            i += 3
        else:
            rest.append(token)
            i += 1
    return rest, pairs


def _preflight(notebook_names: Sequence[str], datasets: Sequence[str] | None,
               params: dict[str, Any]) -> list[Path]:
    """Every check that needs no kernel: notebooks, dataset names, parameter names and values."""
    from infae_kit.data.registry import check_dataset_name

    notebooks = [find_notebook(n) for n in notebook_names]
    for ds in datasets or ():
        check_dataset_name(ds)
    for nb in notebooks:
        check_parameters(nb, {**params, **({"dataset": None} if datasets else {}), "output_dir": None})
        check_parameter_values(nb, params)
    return notebooks


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring). Returns the exit status: 0 when every run succeeded, 1
    when a run failed, 2 when the command itself is wrong (nothing ran)."""
    parser = argparse.ArgumentParser(prog="python -m infae_kit.runner", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebooks", nargs="+", default=None, help="notebook stems or number prefixes")
    parser.add_argument("--datasets", nargs="+", default=None,
                        help="datasets to run each notebook on (passed as the 'dataset' parameter)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="notebook parameter (repeatable); unknown names and bad values are refused")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where executed notebooks and result JSON go (default: $INFAE_RUNS_DIR or runs/)")
    parser.add_argument("--record-dir", type=Path, default=None,
                        help="the recorded results each run is merged into (default: figures/)")
    parser.add_argument("--no-record", action="store_true",
                        help="do not merge the runs into the recorded results (an exploratory run)")
    parser.add_argument("--gather", action="store_true",
                        help="run nothing: regenerate the results table and the generated documents")
    parser.add_argument("--table", type=Path, default=None,
                        help="markdown table gathering the recorded results (default: <record-dir>/results.md)")
    parser.add_argument("--log-output", action="store_true", help="stream notebook output to the terminal")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("papermill").setLevel(logging.WARNING)  # its per-notebook INFO lines repeat ours
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        rest, pairs = _split_parameters(argv)
    except ParameterError as err:
        parser.print_usage(sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return 2
    args = parser.parse_args(rest)
    if args.gather == bool(args.notebooks):
        parser.error("give --notebooks to run notebooks, or --gather alone to regenerate the results documents")
    output_dir = args.output_dir if args.output_dir is not None else runs_dir()
    record_dir = args.record_dir if args.record_dir is not None else figures_dir()
    table = args.table if args.table is not None else record_dir / "results.md"

    failures, n_runs = [], 0
    if args.notebooks:
        params = {name: parse_value(value) for name, value in pairs}
        datasets = args.datasets or [None]
        try:  # everything that needs no kernel, before the first one starts
            notebooks = _preflight(args.notebooks, args.datasets, params)
        except InfaeError as err:
            print(f"error: {err}", file=sys.stderr)
            print("Nothing was run.", file=sys.stderr)
            return 2
        for nb in notebooks:
            for ds in datasets:
                t = time.perf_counter()
                label = f"{nb.stem} × {ds}" if ds else nb.stem
                if ds and params.get("validation") == "holdout":
                    label += " (validation holdout)"
                log.info("running %s ...", label)
                n_runs += 1
                try:
                    out = run_notebook(nb, output_dir, params, dataset=ds, log_output=args.log_output)
                except Exception as exc:  # keep going: report every failure, then exit 1
                    failures.append(label)
                    failed = output_dir / f"{nb.stem}{run_label(ds, params)}.failed.ipynb"
                    log.error("%s", failure_report(label, exc, failed))
                    continue
                log.info("  done in %.0f s -> %s", time.perf_counter() - t, out)
                if not args.no_record:
                    recorded = record_results(out.with_suffix(".json"), record_dir)
                    log.info("  recorded in %s", recorded)
    if args.gather or len(failures) < n_runs:  # --gather, or at least one run wrote its results
        try:
            if not result_files(record_dir, notebook_stems()):
                log.info("no recorded results in %s: nothing to gather", record_dir)
            else:
                gather_results(record_dir, table)
                log.info("results table: %s", table)
                if record_dir.resolve() == (repo_root() / "figures").resolve():
                    for path in render_documents(record_dir):
                        log.info("rendered %s", path)
        except InfaeError as exc:
            log.error("%s", exc)
            failures.append("gather")
    if failures:
        log.error("%d run(s) failed: %s", len(failures), ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
