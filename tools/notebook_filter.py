#!/usr/bin/env python3
"""Strip what running a notebook adds, so that a tracked ``.ipynb`` holds its cells and nothing else.

Outputs, execution counts, the metadata JupyterLab and papermill add (``language_info``, ``widgets``,
``papermill``, cell timings, collapsed / scrolled / hidden states) are removed; cells, their ids and tags, and
the notebook metadata that ``jupytext.toml`` keeps (``notebook_metadata_filter``: kernelspec and jupytext) stay.
The result is written as jupytext and nbformat write notebooks (sorted keys, one-space indent), so a clean
notebook passes through unchanged.

Uses:

* git clean filter (installed by ``make env``, declared for ``notebooks/*.ipynb`` in ``.gitattributes``)::

      git config filter.notebook-outputs.clean "python3 tools/notebook_filter.py"

  reads a notebook on stdin and writes the stripped one on stdout: what git stores never has outputs,
  whatever JupyterLab saved in the working copy, and ``git status`` shows no change for a run notebook.
* ``python3 tools/notebook_filter.py --in-place notebooks/*.ipynb`` (``make clean-notebooks``) strips the
  working copies themselves.
* ``python3 tools/notebook_filter.py --check notebooks/*.ipynb`` exits 1 and names every file that the filter
  would change.

Standard library only: git runs it with whichever ``python3`` is on the PATH, with or without the venv.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

__all__ = ["DEFAULT_KEPT_METADATA", "VOLATILE_CELL_METADATA", "kept_notebook_metadata", "strip_notebook",
           "strip_text", "main"]

DEFAULT_KEPT_METADATA = ("kernelspec", "jupytext")
"""Notebook metadata kept when no ``jupytext.toml`` says otherwise."""

VOLATILE_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled", "jupyter", "papermill")
"""Cell metadata that records a run or a view state, not the cell's content."""


def kept_notebook_metadata(root: Path | None = None) -> tuple[str, ...]:
    """The notebook metadata keys of ``notebook_metadata_filter`` in ``<root>/jupytext.toml``."""
    root = Path.cwd() if root is None else root
    path = root / "jupytext.toml"
    try:
        import tomllib

        with open(path, "rb") as fh:
            value = tomllib.load(fh).get("notebook_metadata_filter")
    except (OSError, ImportError, ValueError):
        return DEFAULT_KEPT_METADATA
    if not isinstance(value, str):
        return DEFAULT_KEPT_METADATA
    keys = tuple(k.strip() for k in value.split(",") if k.strip() and not k.strip().startswith("-"))
    return keys or DEFAULT_KEPT_METADATA


def strip_notebook(nb: dict, kept_metadata: tuple[str, ...] = DEFAULT_KEPT_METADATA) -> dict:
    """``nb`` (a notebook as parsed JSON) without outputs, execution counts and run / view metadata."""
    nb = dict(nb)
    nb["metadata"] = {k: v for k, v in nb.get("metadata", {}).items() if k in kept_metadata}
    cells = []
    for cell in nb.get("cells", []):
        cell = dict(cell)
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k not in VOLATILE_CELL_METADATA}
        cells.append(cell)
    nb["cells"] = cells
    return nb


def strip_text(text: str, kept_metadata: tuple[str, ...] = DEFAULT_KEPT_METADATA) -> str:
    """The stripped notebook serialised as jupytext / nbformat write it."""
    nb = strip_notebook(json.loads(text), kept_metadata)
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--in-place", action="store_true", help="strip the given files in place")
    mode.add_argument("--check", action="store_true", help="exit 1 if a given file would change")
    parser.add_argument("files", nargs="*", type=Path, help="notebooks (none: filter stdin to stdout)")
    args = parser.parse_args(argv)
    kept = kept_notebook_metadata()
    if not args.files:
        if args.in_place or args.check:
            parser.error("--in-place and --check need notebook files")
        text = sys.stdin.buffer.read().decode("utf-8")
        if not text.strip():  # an empty file (a notebook being created): nothing to strip
            sys.stdout.write(text)
            return 0
        try:
            sys.stdout.buffer.write(strip_text(text, kept).encode("utf-8"))
        except json.JSONDecodeError as err:
            print(f"notebook_filter: the notebook is not valid JSON ({err}); fix it or restore it with "
                  "`git checkout -- <file>`.", file=sys.stderr)
            return 1
        return 0
    changed = []
    for path in args.files:
        text = path.read_text(encoding="utf-8")
        stripped = strip_text(text, kept)
        if stripped != text:
            changed.append(path)
            if args.in_place:
                _write_atomically(path, stripped)
    if args.check and changed:
        print("notebooks with outputs or run metadata: " + ", ".join(map(str, changed))
              + "\nstrip them with `make clean-notebooks`.", file=sys.stderr)
        return 1
    if args.in_place:
        for path in changed:
            print(f"stripped {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
