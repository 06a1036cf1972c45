"""The notebook tier: every notebook's CI-size results JSON against the values recorded in
``tests/notebook_expectations.json``, within the tolerances stated there.

Under ``pytest tests notebooks --nbval-lax`` (``make test``) nbval executes each notebook with its CI preset
(``INFAE_NOTEBOOK_PRESET=ci``, set by ``conftest.py``) and the notebook writes ``<stem>-<dataset>.json`` into
``$INFAE_RUNS_DIR``; ``conftest.py`` runs these tests after every notebook. Run on their own (``pytest
tests/test_notebook_results.py``), they execute the notebooks themselves with papermill first.

To record new values after a change that moves them on purpose: run the notebook tier, then
``python tests/test_notebook_results.py --record <runs dir>`` rewrites the values (not the tolerances) from that
run's JSON files, and say in the commit why they moved.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXPECTATIONS_PATH = Path(__file__).with_name("notebook_expectations.json")
EXPECTATIONS = json.loads(EXPECTATIONS_PATH.read_text(encoding="utf-8"))


def value_at(record: dict, path: str) -> Any:
    """The value at ``a/b/c`` in a results record (list indices as integers)."""
    node: Any = record
    for part in path.split("/"):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _results_file(stem: str, request: pytest.FixtureRequest) -> Path:
    from infae_kit.paths import runs_dir

    path = runs_dir() / f"{stem}-{EXPECTATIONS['notebooks'][stem]['dataset']}.json"
    if path.exists():
        return path
    if any(Path(str(item.fspath)).name == f"{stem}.ipynb" for item in request.session.items):
        pytest.fail(f"nbval ran notebooks/{stem}.ipynb in this session but it wrote no {path.name}: see its failure")
    import papermill

    papermill.execute_notebook(str(NOTEBOOKS / f"{stem}.ipynb"), str(path.with_suffix(".ipynb")),
                               kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False)
    return path


@pytest.mark.notebook
@pytest.mark.notebook_results
@pytest.mark.parametrize("stem", sorted(EXPECTATIONS["notebooks"]))
def test_notebook_results_match_the_recorded_values(stem, request):
    from infae_kit.evaluation.results import read_results
    from infae_kit.paths import data_dir

    spec = EXPECTATIONS["notebooks"][stem]
    if data_dir() is None or not (data_dir() / spec["needs"]).exists():
        pytest.skip(f"{stem} runs on {spec['dataset']}, whose files are not in the data directory")
    record = read_results(_results_file(stem, request))
    assert record["dataset"] == spec["dataset"]
    for key, expected in spec.get("parameters", {}).items():
        assert record["parameters"][key] == expected, f"{stem} ran with {key}={record['parameters'][key]!r}"
    failures = []
    for group, values in spec["values"].items():
        tolerance = spec["tolerances"][group]
        for path, expected in values.items():
            actual = value_at(record, path)
            ok = (actual == expected if isinstance(expected, (bool, str)) or expected is None
                  else math.isclose(actual, expected, rel_tol=tolerance["rel"], abs_tol=tolerance["abs"]))
            if not ok:
                failures.append(f"{path}: {actual!r}, recorded {expected!r} ({group}: rel {tolerance['rel']}, "
                                f"abs {tolerance['abs']})")
    assert not failures, f"{stem}: {len(failures)} values moved:\n" + "\n".join(failures)


def record_values(runs: Path) -> None:
    """Rewrite the recorded values of ``notebook_expectations.json`` from the result files in ``runs``."""
    expectations = json.loads(EXPECTATIONS_PATH.read_text(encoding="utf-8"))
    for stem, spec in expectations["notebooks"].items():
        record = json.loads((runs / f"{stem}-{spec['dataset']}.json").read_text(encoding="utf-8"))
        for values in spec["values"].values():
            for path in values:
                values[path] = value_at(record, path)
    EXPECTATIONS_PATH.write_text(json.dumps(expectations, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--record":
        sys.exit("usage: python tests/test_notebook_results.py --record <runs dir>")
    record_values(Path(sys.argv[2]))
