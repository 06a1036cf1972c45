"""Documents generated from the recorded results: the committed ones are current, the renderer reads what it says."""

from __future__ import annotations

import json

import pytest

from infae_kit.errors import ParameterError
from infae_kit.evaluation.reports import document_context, generated_documents, render_document
from infae_kit.evaluation.results import write_results
from infae_kit.paths import repo_root
from infae_kit.runner import gather_results

ROOT = repo_root()


@pytest.mark.parametrize("path", ["docs/results.md", "benchmarks/README.md"])
def test_committed_document_matches_the_recorded_results(path):
    rendered = generated_documents(root=ROOT)
    assert (ROOT / path).read_text(encoding="utf-8") == rendered[ROOT / path], (
        f"{path} is stale: the recorded results or its template changed. Run `python -m infae_kit.runner --gather`."
    )


def test_committed_results_table_matches_the_recorded_results():
    assert (ROOT / "figures" / "results.md").read_text(encoding="utf-8") == gather_results(ROOT / "figures"), (
        "figures/results.md is stale: run `python -m infae_kit.runner --gather`."
    )


def test_every_table1_model_is_recorded_on_ml1m_and_magazine():
    """The record keeps every Table 1 column that was ever computed (a run with fewer models does not drop them)."""
    context = document_context(ROOT / "figures", ROOT / "benchmarks" / "results")
    for dataset in ("ml-1m", "magazine"):
        models = set(context["rec"]("02_closed_form_fit", dataset)["metrics"])
        assert {"poprec", "bias", "mf", "neumf", "lightgcn", "ease", "mvae", "infae"} <= models, dataset
        assert "infae_distilled" in context["rec"]("03_distill", dataset)["metrics"], dataset


@pytest.fixture()
def record_dir(tmp_path):
    folder = tmp_path / "figures"
    write_results(folder, "02_closed_form_fit", "ml-1m", parameters={"competitors": "bias"},
                  metrics={"infae": {"test": {"AUC": 0.94607, "HR@10": 31.906}, "val": {"HR@100": 58.23}}},
                  timings_s={"load": 0.8}, extra={"infae_best_lambda": 5.0})
    (folder / "07_continual-ml-100k.json").write_text(json.dumps({"averages": {"joint": {"HR@10": 11.1723}}}))
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "infinite_ae-ml-1m.json").write_text(json.dumps({"peak_rss_bytes": 1267933184}))
    return folder, bench


def test_render_reads_records_and_formats(record_dir, tmp_path):
    folder, bench = record_dir
    template = tmp_path / "t.md.j2"
    template.write_text(
        '{% set t = test("02_closed_form_fit", "ml-1m", "infae") %}'
        'AUC {{ t["AUC"]|metric("AUC") }}, HR@10 {{ t["HR@10"]|metric("HR@10") }} '
        '({{ t["HR@10"]|rel(paper["ml-1m"]["infae"]["HR@10"]) }}), '
        'λ {{ rec("02_closed_form_fit", "ml-1m").infae_best_lambda|f(0) }}, '
        'val {{ val("02_closed_form_fit", "ml-1m", "infae")["HR@100"]|f(1) }}, '
        'joint {{ data("07_continual-ml-100k").averages.joint["HR@10"]|f(2) }}, '
        'peak {{ bench("infinite_ae-ml-1m").peak_rss_bytes|gib }} GiB, {{ -0.5|signed(1) }}, '
        '{{ monotone([1, 2, 2, 3]) }} {{ monotone([1, 3, 2]) }} {{ largest_drop([1, 4, 2, 3, 0.5]) }} '
        '{{ largest_drop([1, 2]) }}\n'
    )
    text = render_document(template, document_context(folder, bench))
    assert text == ("AUC 0.9461, HR@10 31.91 (+1.3 %), λ 5, val 58.2, joint 11.17, peak 1.18 GiB, −0.5, True False 2.5 0.0\n")


@pytest.mark.parametrize("expression, message", [
    ('rec("02_closed_form_fit", "magazine")', r"no recorded result 02_closed_form_fit-magazine.json.*recorded: "
                                               r"02_closed_form_fit-ml-1m"),
    ('test("02_closed_form_fit", "ml-1m", "ease")', r"no test metrics for model 'ease'; its models: \['infae'\]"),
    ('val("02_closed_form_fit", "ml-1m", "infae")["NDCG@10"]', "NDCG@10"),
    ('data("03_distill_search-ml-1m")', "no JSON file 03_distill_search-ml-1m.json"),
    ('bench("sweep-ml-1m")', "no benchmark record sweep-ml-1m.json"),
    ('rec("02_closed_form_fit", "ml-1m").no_such_key', "no_such_key"),
])
def test_render_names_what_is_missing(record_dir, tmp_path, expression, message):
    folder, bench = record_dir
    template = tmp_path / "t.md.j2"
    template.write_text("{{ " + expression + " }}")
    with pytest.raises(ParameterError, match=message):
        render_document(template, document_context(folder, bench))


def test_rebuilt_values_are_listed(record_dir, tmp_path):
    """Values rebuilt from an earlier summary (not a run's own file) are named, also when a run carries them over."""
    from infae_kit.evaluation.results import merge_results, read_results
    from infae_kit.io_utils import atomic_write_json

    folder, bench = record_dir
    assert document_context(folder, bench)["rebuilt"] == []
    path = folder / "02_closed_form_fit-ml-1m.json"
    rebuilt = read_results(path)
    rebuilt["created_by"] = {"reconstructed_from": "an earlier table"}
    rebuilt["metrics"]["lightgcn"] = {"test": {"HR@10": 27.51}}
    atomic_write_json(path, rebuilt)
    assert document_context(folder, bench)["rebuilt"] == [("02_closed_form_fit", "ml-1m", ["∞-AE", "LightGCN"])]
    run = read_results(write_results(tmp_path / "run", "02_closed_form_fit", "ml-1m", parameters={},
                                     metrics={"infae": {"test": {"HR@10": 31.9}}}, timings_s={"load": 1.0}))
    atomic_write_json(path, merge_results(rebuilt, run))
    assert document_context(folder, bench)["rebuilt"] == [("02_closed_form_fit", "ml-1m", ["LightGCN"])]
