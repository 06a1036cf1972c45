"""Tests of infae_kit.evaluation.results: round trip, atomic writes, schema errors, tables, the paper's numbers."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import infae_kit
from infae_kit import io_utils
from infae_kit.errors import DataFormatError, ParameterError
from infae_kit.evaluation.results import (
    CARRIED_OVER_KEY,
    PAPER_CODE_RERUN,
    PAPER_TABLE1,
    merge_results,
    read_results,
    record_results,
    result_files,
    results_table,
    table1_layout,
    table1_records,
    write_results,
)

METRICS = {
    "infae": {"val": {"HR@100": 60.1}, "test": {"AUC": 0.9457, "HR@10": 31.9, "NDCG@10": 33.39, "PSP@10": 3.29}},
    "ease": {"test": {"AUC": np.float32(0.9069), "HR@10": 28.5}},
}


def write(tmp_path, **overrides):
    kwargs = dict(
        output_dir=tmp_path,
        notebook_stem="01_table1",
        dataset="ml-1m",
        parameters={"lam_grid": [1.0, 5.0], "seed": 42},
        metrics=METRICS,
        timings_s={"load": 4.6, "fit": 10},
    )
    kwargs.update(overrides)
    return write_results(**kwargs)


def test_round_trip(tmp_path):
    path = write(tmp_path, extra={"chosen_lambda": 5.0})
    assert path == tmp_path / "01_table1-ml-1m.json"
    record = read_results(path)
    assert record["dataset"] == "ml-1m" and record["notebook"] == "01_table1"
    assert record["parameters"] == {"lam_grid": [1.0, 5.0], "seed": 42}
    assert record["metrics"]["infae"]["test"]["NDCG@10"] == 33.39
    assert record["metrics"]["ease"]["test"]["AUC"] == pytest.approx(0.9069, rel=1e-6)
    assert record["timings_s"] == {"load": 4.6, "fit": 10.0}
    assert record["kit_version"] == infae_kit.__version__
    assert set(record["created_by"]) == {"python", "jax", "numpy"}
    assert record["chosen_lambda"] == 5.0


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = write(tmp_path)
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(io_utils.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        write(tmp_path, metrics={"infae": {"test": {"AUC": 0.5}}})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_atomic_write_stream_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "big.npz"
    path.write_bytes(b"old")

    def half_then_fail(fh):
        fh.write(b"partial")
        raise RuntimeError("writer failed (simulated)")

    with pytest.raises(RuntimeError, match="simulated"):
        io_utils.atomic_write_stream(path, half_then_fail)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["big.npz"]
    io_utils.atomic_write_stream(path, lambda fh: fh.write(b"new"))
    assert path.read_bytes() == b"new"


def test_unserialisable_parameters_leave_old_file(tmp_path):
    path = write(tmp_path)
    before = path.read_bytes()
    with pytest.raises(ParameterError, match="JSON"):
        write(tmp_path, parameters={"model": object()})
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "metrics, message",
    [
        ({"infae": {"train": {"AUC": 0.9}}}, "unknown split 'train'"),
        ({"infae": {"test": {"Recall@10": 0.9}}}, "Unknown metric name 'Recall@10'"),
        ({"infae": {"test": {"HR@0": 0.9}}}, "Unknown metric name 'HR@0'"),
        ({"infae": {"test": {"hr@10": 0.9}}}, "Unknown metric name 'hr@10'"),
        ({"infae": {"test": {"NDCG@10": float("nan")}}}, r"metrics\['infae'\]\['test'\]\['NDCG@10'\] is nan"),
        ({"ease": {"val": {"AUC": float("inf")}}}, r"metrics\['ease'\]\['val'\]\['AUC'\] is inf"),
        ({"infae": {"test": {"AUC": "0.9"}}}, "must be a number"),
        ({}, "non-empty"),
    ],
)
def test_schema_errors(tmp_path, metrics, message):
    with pytest.raises(ParameterError, match=message):
        write(tmp_path, metrics=metrics)
    assert not list(tmp_path.iterdir())


def test_other_errors(tmp_path):
    with pytest.raises(ParameterError, match="'load'"):
        write(tmp_path, timings_s={"fit": 1.0})
    with pytest.raises(ParameterError, match="negative"):
        write(tmp_path, timings_s={"load": -1.0})
    with pytest.raises(ParameterError, match="reserved"):
        write(tmp_path, extra={"metrics": 1})
    with pytest.raises(ParameterError, match="notebook_stem"):
        write(tmp_path, notebook_stem="../evil")
    with pytest.raises(ParameterError, match="dataset"):
        write(tmp_path, dataset="a/b")


def test_read_results_rejects_bad_files(tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    with pytest.raises(DataFormatError, match="bad.json.*line 1"):
        read_results(bad_json)
    path = write(tmp_path)
    record = json.loads(path.read_text())
    record["metrics"]["infae"]["test"]["MAP@10"] = 1.0
    path.write_text(json.dumps(record))
    with pytest.raises(DataFormatError, match="MAP@10"):
        read_results(path)
    del record["timings_s"]
    path.write_text(json.dumps(record))
    with pytest.raises(DataFormatError, match="timings_s"):
        read_results(path)


def test_results_table(tmp_path):
    first = write(tmp_path)
    second = write(tmp_path, dataset="magazine", notebook_stem="02_other",
                   metrics={"infae": {"test": {"AUC": 0.85, "HR@10": 25.0}}})
    table = results_table([first, read_results(second)], paper_reference=PAPER_TABLE1)
    lines = table.strip().split("\n")
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["dataset", "model", "notebook", "val HR@100", "test AUC", "test HR@10", "test NDCG@10",
                      "test PSP@10"]
    assert len(lines) == 2 + 3  # header, separator, (magazine, infae), (ml-1m, ease), (ml-1m, infae)
    assert lines[2].startswith("| magazine | ∞-AE | 02_other | — | 0.8500 (0.8539) | 25.00 (27.09) |")
    # a metric we did not compute still shows the paper's value: "— (paper)"
    assert "| ml-1m | EASE | 01_table1 | — | 0.9069 (0.9069) | 28.50 (28.54) | — (29.88) | — (3.06) |" in table
    assert "60.10 |" in lines[4] and "33.39 (32.82)" in lines[4]
    plain = results_table(first)
    assert "(" not in plain


def test_paper_numbers():
    assert set(PAPER_TABLE1) == {"magazine", "ml-1m", "douban", "netflix"}
    metrics = {"AUC", "HR@10", "HR@100", "NDCG@10", "NDCG@100", "PSP@10"}
    for dataset, by_model in PAPER_TABLE1.items():
        expected_models = {"poprec", "bias", "mf", "neumf", "lightgcn", "ease", "mvae", "infae", "infae_distilled"}
        if dataset == "netflix":
            expected_models.discard("lightgcn")  # "Timed Out" in the paper
        assert set(by_model) == expected_models
        for values in by_model.values():
            assert set(values) == metrics
            assert 0.5 < values["AUC"] < 1.0
    assert PAPER_TABLE1["magazine"]["infae"] == {
        "AUC": 0.8539, "HR@10": 27.09, "HR@100": 60.86, "NDCG@10": 23.06, "NDCG@100": 30.75, "PSP@10": 13.22
    }
    assert PAPER_TABLE1["ml-1m"]["ease"]["NDCG@100"] == 40.16
    assert PAPER_TABLE1["douban"]["infae_distilled"]["PSP@10"] == 1.24
    assert PAPER_TABLE1["netflix"]["infae"]["HR@100"] == 50.88
    assert PAPER_CODE_RERUN["ml-1m"]["infae"]["NDCG@10"] == 33.39
    assert PAPER_CODE_RERUN["magazine"]["infae"]["PSP@10"] == 12.43


def test_os_replace_is_what_io_utils_uses():
    # the atomicity test above patches io_utils.os.replace; make sure that is the module-level os
    assert io_utils.os is os


def test_table1_layout(tmp_path):
    metrics = {"infae": {"test": {"AUC": 0.9461, "HR@10": 31.91}}, "mf": {"test": {"AUC": 0.9, "HR@10": 25.0}},
               "mystery": {"test": {"HR@10": 1.0}}}
    record = read_results(write(tmp_path, notebook_stem="02_closed_form_fit", metrics=metrics))
    text = table1_layout([record], "ml-1m", PAPER_TABLE1, metrics=("AUC", "HR@10", "NDCG@10"))
    lines = text.splitlines()
    assert lines[0] == "| metric | MF | ∞-AE | mystery |"  # Table 1's column order, unknown models last
    assert lines[2] == "| AUC | 0.9000 (0.9065) | 0.9461 (0.9457) | — |"
    assert lines[3] == "| HR@10 | 25.00 (24.63) | 31.91 (31.51) | 1.00 |"
    assert lines[4] == "| NDCG@10 | — (25.65) | — (32.82) | — |"
    assert table1_layout([record], "magazine", PAPER_TABLE1) == ""


# ----------------------------------------------------------------------------------------------------------
# the recorded results: a run merged into the committed record
# ----------------------------------------------------------------------------------------------------------
ALL_MODELS = {
    "infae": {"test": {"HR@10": 31.9}}, "mf": {"test": {"HR@10": 26.1}}, "lightgcn": {"test": {"HR@10": 27.5}},
}


def test_merge_keeps_the_models_a_run_did_not_compute(tmp_path):
    recorded = read_results(write(tmp_path / "a", notebook_stem="02_closed_form_fit", metrics=ALL_MODELS,
                                  parameters={"competitors": "all"}, timings_s={"load": 1.0, "lightgcn_fit": 800.0},
                                  extra={"configs": {"mf": {"l2": 0.01}, "lightgcn": {"layers": 3}}, "note": "old"}))
    new = read_results(write(tmp_path / "b", notebook_stem="02_closed_form_fit",
                             metrics={"infae": {"test": {"HR@10": 32.0}, "val": {"HR@100": 58.2}},
                                      "mf": {"val": {"HR@100": 53.6}}},
                             parameters={"competitors": "mf"}, timings_s={"load": 2.0},
                             extra={"configs": {"mf": {"l2": 0.1}}, "note": "new"}))
    merged = merge_results(recorded, new)
    assert list(merged["metrics"]) == ["infae", "mf", "lightgcn"]
    assert merged["metrics"]["infae"] == {"test": {"HR@10": 32.0}, "val": {"HR@100": 58.2}}
    assert merged["metrics"]["mf"] == {"val": {"HR@100": 53.6}}  # a computed model is replaced whole
    assert merged["metrics"]["lightgcn"] == {"test": {"HR@10": 27.5}}
    assert merged["parameters"] == {"competitors": "mf"}
    assert merged[CARRIED_OVER_KEY] == {"lightgcn": {"parameters": {"competitors": "all"},
                                                     "kit_version": recorded["kit_version"],
                                                     "created_by": recorded["created_by"]}}
    assert merged["timings_s"] == {"load": 2.0, "lightgcn_fit": 800.0}
    assert merged["configs"] == {"mf": {"l2": 0.1}, "lightgcn": {"layers": 3}} and merged["note"] == "new"
    # a second run keeps the first provenance of what it still carries, and a refreshed model is no longer carried
    third = read_results(write(tmp_path / "c", notebook_stem="02_closed_form_fit",
                               metrics={"lightgcn": {"test": {"HR@10": 27.6}}}, parameters={"competitors": "lightgcn"}))
    again = merge_results(merged, third)
    assert set(again[CARRIED_OVER_KEY]) == {"infae", "mf"}
    assert again[CARRIED_OVER_KEY]["infae"]["parameters"] == {"competitors": "mf"}
    assert again["metrics"]["lightgcn"]["test"]["HR@10"] == 27.6
    assert recorded["metrics"]["mf"] == {"test": {"HR@10": 26.1}}  # inputs untouched


def test_merge_refuses_records_of_other_runs(tmp_path):
    first = read_results(write(tmp_path, dataset="ml-1m"))
    with pytest.raises(ParameterError, match="different runs"):
        merge_results(first, read_results(write(tmp_path, dataset="magazine")))
    with pytest.raises(ParameterError, match="the new record: .*timings_s"):
        merge_results(first, {k: v for k, v in first.items() if k != "timings_s"})


def test_record_results_merges_into_the_record_dir(tmp_path):
    record_dir = tmp_path / "figures"
    full = write(tmp_path / "run1", notebook_stem="02_closed_form_fit", metrics=ALL_MODELS)
    assert record_results(full, record_dir) == record_dir / "02_closed_form_fit-ml-1m.json"
    partial = write(tmp_path / "run2", notebook_stem="02_closed_form_fit", metrics={"mf": {"test": {"HR@10": 30.0}}})
    path = record_results(partial, record_dir)
    kept = read_results(path)
    assert set(kept["metrics"]) == {"infae", "mf", "lightgcn"} and kept["metrics"]["mf"]["test"]["HR@10"] == 30.0
    assert sorted(kept[CARRIED_OVER_KEY]) == ["infae", "lightgcn"]
    assert [p.name for p in record_dir.iterdir()] == [path.name]  # no temporary files left
    # a damaged record is not overwritten silently
    path.write_text("{broken")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        record_results(partial, record_dir)


def test_result_files_are_the_notebooks_records_only(tmp_path):
    for name in ("03_distill-ml-1m.json", "03_distill_search-ml-1m.json", "07_continual-ml-100k.json",
                 "02_closed_form_fit-douban-book.json", ".03_distill-x.json.tmp", "notes.json"):
        (tmp_path / name).write_text("{}")
    stems = ["02_closed_form_fit", "03_distill", "07_continual_learning"]
    assert [p.name for p in result_files(tmp_path, stems)] == ["02_closed_form_fit-douban-book.json",
                                                               "03_distill-ml-1m.json"]


def test_table1_records_add_the_distill_column(tmp_path):
    table2 = read_results(write(tmp_path, notebook_stem="02_closed_form_fit", metrics=ALL_MODELS))
    distill = read_results(write(tmp_path, notebook_stem="03_distill", metrics={
        "infae_distilled": {"test": {"HR@10": 31.17}}, "infae_full": {"test": {"HR@10": 31.9}}}))
    rows = table1_records([table2, distill])
    text = table1_layout(rows, "ml-1m", PAPER_TABLE1, metrics=("HR@10",))
    assert text.splitlines()[0] == "| metric | MF | LightGCN | ∞-AE | DISTILL-CF + ∞-AE |"
    assert text.splitlines()[2] == "| HR@10 | 26.10 (24.63) | 27.50 (27.43) | 31.90 (31.51) | 31.17 (31.16) |"
