"""Notebooks: paired sources in sync, clean committed .ipynb, papermill runs on real data, the runner."""

import json
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from shared_data import needs_data_file
from infae_kit.errors import ParameterError
from infae_kit.paths import data_dir
from infae_kit.evaluation.results import PAPER_CODE_RERUN, PAPER_TABLE1, read_results
from infae_kit import runner
from infae_kit.runner import (
    check_parameter_values,
    check_parameters,
    find_notebook,
    main,
    notebook_parameters,
    parse_value,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
PY_SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def _in_git_checkout() -> bool:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--is-inside-work-tree"], capture_output=True,
                              text=True).stdout.strip() == "true"
    except OSError:
        return False


def _committed_text(path: Path) -> str:
    """The file as git stores it (the index: what a commit records, after the notebook filter); the working
    copy outside a git checkout (an unpacked archive)."""
    if not _in_git_checkout():
        return path.read_text(encoding="utf-8")
    rel = path.relative_to(ROOT).as_posix()
    shown = subprocess.run(["git", "-C", str(ROOT), "show", f":{rel}"], capture_output=True)
    assert shown.returncode == 0, f"{rel} is not in git's index: `git add` it"
    return shown.stdout.decode("utf-8")


def _notebook_filter():
    import importlib.util

    spec = importlib.util.spec_from_file_location("notebook_filter", ROOT / "tools" / "notebook_filter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cells(nb):
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


def test_every_notebook_is_a_pair():
    stems_py = {p.stem for p in PY_SOURCES}
    stems_nb = {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}
    assert stems_py, "no notebooks found"
    assert stems_py == stems_nb, f"unpaired notebooks: {stems_py ^ stems_nb}"


@pytest.mark.parametrize("py", PY_SOURCES, ids=lambda p: p.stem)
def test_pair_in_sync_and_clean(py):
    """What is committed (git's index), not the working copy JupyterLab may have saved outputs into."""
    ipynb = py.with_suffix(".ipynb")
    nb_text = _committed_text(ipynb)
    from_py = jupytext.reads(_committed_text(py), fmt="py:percent")
    from_nb = nbformat.reads(nb_text, as_version=4)
    assert _cells(from_py) == _cells(from_nb), f"{py.name} and {ipynb.name} differ: run `make sync-notebooks`"
    assert from_nb.metadata["kernelspec"]["name"] == "python3", "papermill needs the kernelspec"
    code = [c for c in from_nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "the first code cell must be tagged 'parameters'"
    assert all(not c.get("outputs") for c in code), f"{ipynb.name} is committed with outputs"
    assert all(c.get("execution_count") is None for c in code), f"{ipynb.name} is committed with execution counts"
    assert set(from_nb.metadata) <= {"kernelspec", "jupytext"}, f"{ipynb.name} carries run metadata"
    assert _notebook_filter().strip_text(nb_text) == nb_text, f"{ipynb.name} is not as the notebook filter stores it"
    params = code[0].source
    assert "output_dir" in params and "dataset" in params


def test_notebook_filter_keeps_outputs_out_of_commits(tmp_path):
    """The git clean filter `make env` installs: a notebook saved with outputs, run metadata and widget state
    is committed without them, and `git status` stays clean while the working copy keeps its outputs."""
    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    (repo / "notebooks").mkdir()
    (repo / "tools" / "notebook_filter.py").write_bytes((ROOT / "tools" / "notebook_filter.py").read_bytes())
    (repo / ".gitattributes").write_bytes((ROOT / ".gitattributes").read_bytes())
    (repo / "jupytext.toml").write_bytes((ROOT / "jupytext.toml").read_bytes())
    clean_text = _committed_text(NOTEBOOKS / "02_closed_form_fit.ipynb")
    nb = json.loads(clean_text)
    nb["metadata"]["language_info"] = {"name": "python", "version": "3.11.7"}
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["execution_count"] = 7
    code["metadata"]["execution"] = {"iopub.status.busy": "2024-01-01T00:00:00Z"}
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["λ picked: 20\n"]}]
    run_text = json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    target = repo / "notebooks" / "02_closed_form_fit.ipynb"
    target.write_text(run_text, encoding="utf-8")

    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    git("config", "user.email", "test@example.org")
    git("config", "user.name", "test")
    # the same three settings as the Makefile's notebook-filter target
    git("config", "filter.notebook-outputs.clean", f"{sys.executable} tools/notebook_filter.py")
    git("config", "filter.notebook-outputs.smudge", "cat")
    git("config", "filter.notebook-outputs.required", "true")
    git("add", ".")
    git("commit", "-q", "-m", "notebook run in JupyterLab")
    stored = git("show", "HEAD:notebooks/02_closed_form_fit.ipynb")
    assert stored == clean_text  # exactly the clean notebook: no outputs, counts, language_info or widgets
    assert target.read_text(encoding="utf-8") == run_text  # the working copy keeps what Lab showed
    assert git("status", "--porcelain") == ""  # and git sees nothing to commit


@pytest.mark.parametrize("py", PY_SOURCES, ids=lambda p: p.stem)
def test_papermill_sees_every_parameter(py):
    """papermill silently skips a parameter line it cannot parse (e.g. a quote in the comment)."""
    import papermill

    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = [line.split("=", 1)[0].strip() for line in cell.source.splitlines()
                if line and not line.startswith(("#", " ")) and "=" in line]
    assert list(papermill.inspect_notebook(str(py.with_suffix(".ipynb")))) == assigned


def test_find_notebook_and_parse_values():
    assert find_notebook("02").name == "02_closed_form_fit.ipynb"
    assert find_notebook("02_closed_form_fit").stem == "02_closed_form_fit"
    with pytest.raises(ParameterError, match="known notebooks"):
        find_notebook("99")
    assert parse_value("5") == 5 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("ml-1m") == "ml-1m" and parse_value("1,5,20") == "1,5,20"


def test_runner_refuses_unknown_parameters(tmp_path, capsys):
    nb = find_notebook("02")
    check_parameters(nb, {"dataset": "magazine", "lambdas": "1,5"})
    with pytest.raises(ParameterError, match=r"'lamdbas'.*Its parameters are: .*lambdas"):
        check_parameters(nb, {"dataset": "magazine", "lamdbas": "1,5"})
    # the CLI refuses before running anything, with one line instead of a traceback, and writes nothing
    rc = main(["--notebooks", "02", "--datasets", "magazine", "-p", "lamdbas", "1", "--output-dir",
               str(tmp_path / "out"), "--table", str(tmp_path / "t.md")])
    err = capsys.readouterr().err
    assert rc == 2 and "error: 02_closed_form_fit.ipynb has no parameter(s) 'lamdbas'" in err
    assert "Traceback" not in err and "Nothing was run." in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "t.md").exists()


@pytest.mark.parametrize("py", PY_SOURCES, ids=lambda p: p.stem)
def test_every_notebook_default_passes_the_runner_checks(py):
    """The runner's checks by parameter name hold for what each notebook itself declares."""
    nb = py.with_suffix(".ipynb")
    defaults = notebook_parameters(nb)
    check_parameter_values(nb, defaults)
    assert isinstance(defaults["dataset"], str) and defaults["output_dir"] == ""


def test_runner_follows_infae_runs_dir_and_exits_1_when_a_run_fails(tmp_path, monkeypatch, caplog):
    """Without --output-dir the runs go to $INFAE_RUNS_DIR; a failing run is reported with the notebook's own error
    and failing line, the other runs still run, and the exit status is 1."""
    import papermill

    ran = []

    def fake_run(path, output_dir, parameters, *, dataset=None, log_output=False):
        ran.append((path.stem, dataset, output_dir))
        if dataset == "ml-1m":
            (output_dir / f"{path.stem}-{dataset}.failed.ipynb").parent.mkdir(parents=True, exist_ok=True)
            (output_dir / f"{path.stem}-{dataset}.failed.ipynb").write_text("{}")
            raise papermill.PapermillExecutionError(
                cell_index=4, exec_count=3, source="data = load_dataset(dataset)\nstats = dataset_statistics(data)",
                ename="DatasetNotFoundError", evalue="Dataset 'ml-1m': file index.npz not found. Searched: ...",
                traceback=["\x1b[0;31mDatasetNotFoundError\x1b[0m",
                           "Cell \x1b[0;32mIn[3], line 1\x1b[0m\n----> 1 data"])
        return output_dir / f"{path.stem}-{dataset}.ipynb"

    monkeypatch.setenv("INFAE_RUNS_DIR", str(tmp_path / "env-runs"))
    monkeypatch.setattr(runner, "run_notebook", fake_run)
    monkeypatch.setattr(runner, "gather_results", lambda output_dir, table: "")
    with caplog.at_level("INFO", logger="infae_kit.runner"):
        rc = main(["--notebooks", "02", "--datasets", "ml-1m", "magazine", "--table", str(tmp_path / "t.md"),
                   "--no-record", "--record-dir", str(tmp_path / "record")])
    assert rc == 1
    assert [(stem, ds) for stem, ds, _ in ran] == [("02_closed_form_fit", "ml-1m"), ("02_closed_form_fit", "magazine")]
    assert {out for _, _, out in ran} == {(tmp_path / "env-runs").resolve()}
    text = caplog.text
    assert ("FAILED 02_closed_form_fit × ml-1m: DatasetNotFoundError: Dataset 'ml-1m': file index.npz not found."
            in text)
    assert "failing line 1 of cell [3]: data = load_dataset(dataset)" in text
    assert "02_closed_form_fit-ml-1m.failed.ipynb" in text and "1 run(s) failed: 02_closed_form_fit × ml-1m" in text


def test_runner_files_holdout_runs_apart(tmp_path, monkeypatch):
    """`-p validation holdout` reaches the notebook, and its executed notebook, result file and record are
    `<stem>-<dataset>-holdout`: they never replace the paper protocol's."""
    import papermill

    from infae_kit.data import dataset_label
    from infae_kit.evaluation.results import write_results

    assert runner.run_label(None, {}) == "" and runner.run_label("magazine", {"validation": "paper"}) == "-magazine"
    assert runner.run_label("magazine", {"validation": "holdout"}) == "-magazine-holdout"
    seen = []

    def fake_execute(source, target, parameters, **kwargs):  # what notebooks 03-05 write
        seen.append(parameters)
        Path(target).write_text("{}")
        write_results(parameters["output_dir"], Path(source).stem,
                      dataset_label(parameters["dataset"], parameters.get("validation", "paper")),
                      parameters=parameters, metrics={"infae": {"test": {"HR@10": 1.0}}}, timings_s={"load": 0.1})

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    out, record = tmp_path / "runs", tmp_path / "record"
    for validation in ("paper", "holdout"):
        assert main(["--notebooks", "04", "--datasets", "magazine", "-p", "validation", validation, "--output-dir",
                     str(out), "--record-dir", str(record), "--table", str(tmp_path / "t.md")]) == 0
    assert [p["validation"] for p in seen] == ["paper", "holdout"]
    assert sorted(p.name for p in out.glob("04_sampling-*")) == [
        "04_sampling-magazine-holdout.ipynb", "04_sampling-magazine-holdout.json", "04_sampling-magazine.ipynb",
        "04_sampling-magazine.json"]
    assert sorted(p.name for p in record.glob("*.json")) == ["04_sampling-magazine-holdout.json",
                                                           "04_sampling-magazine.json"]
    assert read_results(record / "04_sampling-magazine-holdout.json")["parameters"]["validation"] == "holdout"
    assert read_results(record / "04_sampling-magazine.json")["parameters"]["validation"] == "paper"
    # a protocol the kit does not know, or a notebook without the parameter, is refused before any kernel starts
    for nb, value in (("04", "holdot"), ("02", "holdout")):
        assert main(["--notebooks", nb, "--datasets", "magazine", "-p", "validation", value, "--output-dir",
                     str(out), "--record-dir", str(record), "--table", str(tmp_path / "t.md")]) == 2
    assert len(seen) == 2


needs_data = needs_data_file("ml-1m/total_data.hdf5")


@pytest.mark.slow
@pytest.mark.notebook
@needs_data
def test_runner_magazine_end_to_end(tmp_path):
    """The runner on Magazine with the official code's matrix (repeats kept as 2) reproduces that code."""
    out, table = tmp_path / "runs", tmp_path / "results.md"
    rc = main(["--notebooks", "02", "--datasets", "magazine", "--output-dir", str(out), "--table", str(table),
               "-p", "figures_dir", str(tmp_path / "fig"), "-p", "repeats", "count"])
    assert rc == 0
    res = read_results(out / "02_closed_form_fit-magazine.json")
    assert (out / "02_closed_form_fit-magazine.ipynb").exists()
    assert (tmp_path / "fig" / "02_coldstart-magazine.png").exists()
    assert res["infae_best_lambda"] == 20.0  # as the paper's code
    m = res["metrics"]["infae"]["test"]
    rerun = PAPER_CODE_RERUN["magazine"]["infae"]
    # the paper's code rerun here: AUC 0.8535, HR@10 25.57, HR@100 61.10, NDCG@10 22.13, NDCG@100 30.65,
    # PSP@10 12.43 — reproduced within 0.5% (AUC differs only through the negatives' RNG)
    for name in ("AUC", "HR@10", "HR@100", "NDCG@10", "NDCG@100", "PSP@10"):
        assert m[name] == pytest.approx(rerun[name], rel=0.005), name
    text = table.read_text()
    assert "magazine" in text and "infae" in text and "(23.06)" in text
    # the default competitors are trained and gathered next to the paper's cells, in Table 1's layout too
    assert {"bias", "mf"} <= set(res["metrics"]) and "Bias-only" in text and "## Table 1, magazine" in text
    assert "(14.36)" in text  # Bias-only's HR@10 on Magazine in the paper


@pytest.mark.slow
@pytest.mark.notebook
@needs_data
def test_closed_form_fit_ml1m_reaches_table1(tmp_path):
    """papermill 02_closed_form_fit on ml-1m: ∞-AE's Table 1 row (λ picked on validation)."""
    import papermill

    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(find_notebook("02")), str(out), kernel_name="python3", cwd=str(NOTEBOOKS),
                               parameters={"dataset": "ml-1m", "output_dir": str(tmp_path),
                                           "figures_dir": str(tmp_path), "competitors": "bias"},
                               progress_bar=False)
    res = read_results(tmp_path / "02_closed_form_fit-ml-1m.json")
    assert res["infae_best_lambda"] == 5.0  # the paper's code also picks λ = 5
    ours, paper = res["metrics"]["infae"]["test"], PAPER_TABLE1["ml-1m"]["infae"]
    # Table 1 within 2% relative; PSP@10 within 2.5%: ours 3.29 equals the paper's own code rerun here (3.29),
    # both 2.2% above the printed 3.22 (see docs/results.md).
    tol = {"AUC": 0.02, "HR@10": 0.02, "HR@100": 0.02, "NDCG@10": 0.02, "NDCG@100": 0.02, "PSP@10": 0.025}
    for name, rel in tol.items():
        assert ours[name] == pytest.approx(paper[name], rel=rel), (name, ours[name], paper[name])
    # ∞-AE ranks above PopRec on every metric, as in the paper. Against EASE it is ahead on AUC, HR@100, NDCG@100
    # and PSP@10 but behind on HR@10 and NDCG@10 (the paper has it ahead everywhere; EASE here is 13 % above the
    # paper's EASE cell on HR@10, figures/results.md): the comparison the notebook records, asserted as measured.
    pop, ease = res["metrics"]["poprec"]["test"], res["metrics"]["ease"]["test"]
    assert all(ours[name] > pop[name] for name in tol), {n: (ours[n], pop[n]) for n in tol}
    ahead = {name for name in tol if ours[name] > ease[name]}
    assert ahead == {"AUC", "HR@100", "NDCG@100", "PSP@10"}, {n: (ours[n], ease[n]) for n in tol}
    assert res["infae_behind_or_tied_with"]["HR@10"] == ["ease"]
    assert res["timings_s"]["load"] > 0 and res["timings_s"]["infae_total"] > 0
    # Bias-only (closed form, ranks by popularity): the paper's cell within 5% on HR@10 and NDCG@10
    bias, paper_bias = res["metrics"]["bias"]["test"], PAPER_TABLE1["ml-1m"]["bias"]
    for name in ("HR@10", "NDCG@10"):
        assert bias[name] == pytest.approx(paper_bias[name], rel=0.05), (name, bias[name], paper_bias[name])
    assert res["parameters"]["competitors"] == "bias"


def _run_distill_notebook(tmp_path, **params):
    import papermill

    return papermill.execute_notebook(
        str(find_notebook("03")), str(tmp_path / "out.ipynb"), kernel_name="python3", cwd=str(NOTEBOOKS),
        parameters=dict(params, output_dir=str(tmp_path), figures_dir=str(tmp_path)), progress_bar=False)


@pytest.mark.notebook
@needs_data
def test_distill_notebook_douban_offline_fails_with_the_data_message(tmp_path):
    """`douban` needs the paper's ratings file, absent here: the run stops at loading, saying where to put it."""
    import papermill

    if (data_dir() / "douban" / "total_data.hdf5").exists():
        pytest.skip("the douban ratings file is present")
    with pytest.raises(papermill.PapermillExecutionError) as err:
        _run_distill_notebook(tmp_path, dataset="douban", preset="ci")
    assert "DatasetNotFoundError" in str(err.value) and "total_data.hdf5" in str(err.value)
    assert not list(tmp_path.glob("03_distill-*.json"))


@pytest.mark.slow
@pytest.mark.notebook
@needs_data
def test_distill_notebook_runs_on_douban_book(tmp_path):
    """papermill 03_distill on douban-book (CI preset): the results JSON and the reloadable artifact."""
    _run_distill_notebook(tmp_path, dataset="douban-book", preset="ci")
    res = read_results(tmp_path / "03_distill-douban-book.json")
    distilled = res["metrics"]["infae_distilled"]["test"]
    assert 0.5 < distilled["AUC"] <= 1.0 and distilled["NDCG@10"] > 0
    assert (tmp_path / "03_distill-douban-book-soft" / "support.npz").exists()


def test_runner_gather_builds_the_table_from_the_recorded_results(tmp_path):
    """`--gather` runs nothing: Table 1 (notebook 02 + DISTILL-CF of 03), every model, what a record carries."""
    from infae_kit.evaluation.results import record_results, write_results

    record_dir = tmp_path / "figures"
    common = dict(dataset="ml-1m", timings_s={"load": 1.0})
    full = write_results(tmp_path / "a", "02_closed_form_fit", parameters={"competitors": "all"},
                         metrics={"infae": {"test": {"HR@10": 31.91}}, "lightgcn": {"test": {"HR@10": 27.51}}}, **common)
    fewer = write_results(tmp_path / "b", "02_closed_form_fit", parameters={"competitors": "bias"},
                          metrics={"infae": {"test": {"HR@10": 31.90}}}, **common)
    distill = write_results(tmp_path / "c", "03_distill", parameters={},
                            metrics={"infae_distilled": {"test": {"HR@10": 31.17}}}, **common)
    for path in (full, fewer, distill):
        record_results(path, record_dir)
    (record_dir / "03_distill_search-ml-1m.json").write_text('{"rows": []}')  # not a result file: left out
    table = tmp_path / "results.md"
    assert main(["--gather", "--record-dir", str(record_dir), "--table", str(table)]) == 0
    text = table.read_text()
    assert "(2 files)" in text
    assert "| metric | LightGCN | ∞-AE | DISTILL-CF + ∞-AE |" in text
    assert "| HR@10 | 27.51 (27.43) | 31.90 (31.51) | 31.17 (31.16) |" in text
    assert "ml-1m: LightGCN (competitors=all)" in text
    with pytest.raises(SystemExit):
        main(["--table", str(table)])  # neither --notebooks nor --gather


@pytest.mark.slow
@pytest.mark.notebook
def test_scale_notebook_ci_preset_on_synthetic(tmp_path):
    """papermill 08_scale (CI preset) on synthetic data: the results contract, and landmark ∞-AE (all users as
    targets) ahead of ∞-AE on the same number of sampled users."""
    import papermill

    papermill.execute_notebook(str(find_notebook("08")), str(tmp_path / "out.ipynb"), kernel_name="python3",
                               cwd=str(NOTEBOOKS), progress_bar=False,
                               parameters={"dataset": "synthetic", "preset": "ci", "output_dir": str(tmp_path),
                                           "figures_dir": str(tmp_path)})
    res = read_results(tmp_path / "08_scale-synthetic.json")
    assert {"infae_landmark", "infae_sampled", "infae", "ease"} <= set(res["metrics"])
    assert res["n_users_trained"]["infae_landmark"] == 1000 and res["n_users_trained"]["infae_sampled"] == 200
    assert res["landmarks"] == 200 and res["peak_rss_gb"] > 0 and res["timings_s"]["total"] > 0
    landmark, sampled = res["metrics"]["infae_landmark"]["test"], res["metrics"]["infae_sampled"]["test"]
    assert landmark["HR@10"] > sampled["HR@10"] and landmark["NDCG@10"] > sampled["NDCG@10"]
    assert {r["model"] for r in res["quality_sweep"]} == {"landmark", "sampled", "exact"}
    assert res["cost_exponents"]["landmark"] is not None
    assert (tmp_path / "08_quality_vs_landmarks-synthetic.png").exists()
    assert (tmp_path / "08_cost_vs_users-synthetic.png").exists()
