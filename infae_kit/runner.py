"""Run notebooks × datasets through papermill and gather their results into one markdown table.

Usage::

    python -m infae_kit.runner --notebooks 01 02 --datasets ml-1m magazine [-p name value ...]
    python -m infae_kit.runner --notebooks 02_closed_form_fit --datasets douban-book -p lambdas "1,5,20"

* A notebook is named by its file stem or its number prefix (``02`` → ``notebooks/02_closed_form_fit.ipynb``).
* Parameters are checked against the notebook's ``parameters`` cell *before* anything runs: an unknown name is
  an error (papermill itself only warns). Values are parsed as JSON when they parse (``5``, ``0.5``, ``true``),
  else kept as strings.
* Executed notebooks go to ``<output-dir>/<stem>-<dataset>.ipynb`` (default ``runs/``), and each notebook writes
  ``<output-dir>/<stem>-<dataset>.json``.
* Each run's result file is then merged into the recorded one, ``figures/<stem>-<dataset>.json``
  (:func:`infae_kit.evaluation.results.record_results`): the run refreshes the cells it computed and every
  other recorded model is kept. ``--no-record`` leaves ``figures/`` alone (an exploratory run).
* Last, the recorded results are gathered into ``figures/results.md``, and the documents generated from them
  (``docs/results.md``, ``benchmarks/README.md``) are rendered again. ``--gather`` does only this step.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from infae_kit.errors import InfaeError, ParameterError
from infae_kit.evaluation.reports import render_documents
from infae_kit.evaluation.results import record_results, result_files
from infae_kit.io_utils import atomic_write_text
from infae_kit.paths import figures_dir, repo_root, runs_dir

__all__ = [
    "NOTEBOOKS_DIR",
    "find_notebook",
    "notebook_parameters",
    "parse_value",
    "check_parameters",
    "run_notebook",
    "gather_results",
    "main",
]

log = logging.getLogger(__name__)

NOTEBOOKS_DIR = repo_root() / "notebooks"


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
    """Parameters declared in the notebook's cell tagged ``parameters`` (name → default as written)."""
    import papermill

    params = papermill.inspect_notebook(str(path))
    if not params:
        raise ParameterError(f"{path.name} has no cell tagged 'parameters'")
    return {name: info.get("default") for name, info in params.items()}


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


def run_notebook(path: Path, output_dir: Path, parameters: dict[str, Any], *, dataset: str | None = None,
                 kernel_name: str = "python3", log_output: bool = False) -> Path:
    """Execute one notebook with papermill; returns the executed notebook's path."""
    import papermill

    params = dict(parameters)
    if dataset is not None:
        params["dataset"] = dataset
    params["output_dir"] = str(output_dir.resolve())
    check_parameters(path, params)
    output_dir.mkdir(parents=True, exist_ok=True)
    tag = f"-{dataset}" if dataset is not None else ""
    out = output_dir / f"{path.stem}{tag}.ipynb"
    tmp = output_dir / f".{out.stem}.running.ipynb"
    papermill.execute_notebook(str(path), str(tmp), parameters=params, kernel_name=kernel_name,
                               cwd=str(path.parent), progress_bar=False, log_output=log_output)
    tmp.replace(out)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m infae_kit.runner --notebooks … --datasets …`` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m infae_kit.runner", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebooks", nargs="+", default=None, help="notebook stems or number prefixes")
    parser.add_argument("--datasets", nargs="+", default=None,
                        help="datasets to run each notebook on (passed as the 'dataset' parameter)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="notebook parameter (repeatable); unknown names are refused")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where executed notebooks and result JSON go (default: runs/)")
    parser.add_argument("--record-dir", type=Path, default=None,
                        help="the recorded results each run is merged into (default: figures/)")
    parser.add_argument("--no-record", action="store_true",
                        help="do not merge the runs into the recorded results (an exploratory run)")
    parser.add_argument("--gather", action="store_true",
                        help="run nothing: regenerate the results table and the generated documents")
    parser.add_argument("--table", type=Path, default=None,
                        help="markdown table gathering the recorded results (default: <record-dir>/results.md)")
    parser.add_argument("--log-output", action="store_true", help="stream notebook output to the terminal")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.gather == bool(args.notebooks):
        parser.error("give --notebooks to run notebooks, or --gather alone to regenerate the results documents")
    output_dir = args.output_dir or runs_dir()
    record_dir = args.record_dir or figures_dir()
    table = args.table or record_dir / "results.md"

    failures = []
    if args.notebooks:
        params = {name: parse_value(value) for name, value in args.parameter}
        notebooks = [find_notebook(n) for n in args.notebooks]
        datasets = args.datasets or [None]
        # Validate every (notebook, parameters) pair before running anything.
        for nb in notebooks:
            check_parameters(nb, {**params, **({"dataset": None} if args.datasets else {}), "output_dir": None})
        for nb in notebooks:
            for ds in datasets:
                t = time.perf_counter()
                label = f"{nb.stem} × {ds}" if ds else nb.stem
                log.info("running %s ...", label)
                try:
                    out = run_notebook(nb, output_dir, params, dataset=ds, log_output=args.log_output)
                    log.info("  done in %.0f s -> %s", time.perf_counter() - t, out)
                    if not args.no_record:
                        recorded = record_results(out.with_suffix(".json"), record_dir)
                        log.info("  recorded in %s", recorded)
                except Exception as exc:  # keep going: report every failure at the end
                    failures.append((label, exc))
                    log.error("FAILED %s: %s", label, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
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
        failures.append(("gather", exc))
    if failures:
        log.error("%d step(s) failed: %s", len(failures), ", ".join(label for label, _ in failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
