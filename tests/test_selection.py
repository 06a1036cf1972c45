"""The kit's one selection loop and the report every tuning returns (infae_kit.evaluation.selection)."""

import dataclasses

import pytest

from infae_kit.errors import ParameterError
from infae_kit.evaluation.selection import Selection, TuningReport, select_on_validation
from infae_kit.models.infinite_ae import InfiniteAEReport


def test_the_best_value_wins_and_ties_go_to_the_first():
    scores = {"a": 2.0, "b": 5.0, "c": 5.0, "d": 1.0}
    seen = []

    def validate(value):
        seen.append(value)
        return {"HR@100": scores[value], "AUC": -scores[value]}, f"model {value}"

    chosen = select_on_validation(list(scores), validate)
    assert isinstance(chosen, Selection) and seen == list(scores)
    assert chosen.best_value == "b" and chosen.best_state == "model b"
    assert list(chosen.val_metrics) == list(scores) and chosen.val_metrics["c"]["HR@100"] == 5.0
    by_auc = select_on_validation(list(scores), validate, select_by="AUC")
    assert by_auc.best_value == "d" and by_auc.select_by == "AUC"


def test_bad_grids_and_metrics_are_refused():
    with pytest.raises(ParameterError, match="empty"):
        select_on_validation([], lambda v: ({"HR@100": 1.0}, None))
    with pytest.raises(ParameterError, match=r"select_by='MRR' is not a computed metric: \['HR@100'\]"):
        select_on_validation([1.0], lambda v: ({"HR@100": 1.0}, None), select_by="MRR")


def test_every_tuning_report_speaks_the_same_vocabulary():
    shared = [f.name for f in dataclasses.fields(TuningReport)]
    assert shared[:4] == ["best_value", "val_metrics", "test_metrics", "test"]
    assert "timings_s" in shared and "select_by" in shared
    assert issubclass(InfiniteAEReport, TuningReport)
    assert [f.name for f in dataclasses.fields(InfiniteAEReport)][: len(shared)] == shared
