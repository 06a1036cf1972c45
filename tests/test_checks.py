"""The kit's shared input checks (infae_kit.checks): numbers, and the configurations' JSON round trip and field
checks."""

import dataclasses

import numpy as np
import pytest

from infae_kit.checks import DictConfig, non_negative_float
from infae_kit.errors import ParameterError


@dataclasses.dataclass(frozen=True)
class _Config(DictConfig):
    steps: int = 3
    rate: float = 0.5
    widths: tuple[int, ...] = (4, 8)
    mode: str = "a"

    def __post_init__(self) -> None:
        self.check_int_fields(("steps",), 1)
        self.check_real_field("rate", 0, 1, high_open=True, note="a share")
        self.check_choice_field("mode", ("a", "b"))


def test_non_negative_float_accepts_numbers_and_names_the_problem():
    assert non_negative_float("lam", 0) == 0.0 and non_negative_float("lam", np.float32(2.5)) == 2.5
    for bad in (-1, float("nan"), float("inf"), "five", None, True):
        with pytest.raises(ParameterError, match=r"lam must be a (finite )?number ≥ 0, got .*The grid is 1, 10\."):
            non_negative_float("lam", bad, hint="The grid is 1, 10.")


def test_configs_round_trip_through_json_ready_dicts():
    config = _Config(steps=5, widths=(2,))
    assert config.to_dict() == {"steps": 5, "rate": 0.5, "widths": [2], "mode": "a"}
    assert _Config.from_dict(config.to_dict()).to_dict() == config.to_dict()
    with pytest.raises(ParameterError, match=r"unknown _Config fields \['step'\]; known: \['mode', 'rate', 'steps'"):
        _Config.from_dict({"step": 5})


@pytest.mark.parametrize("field,value,message", [
    ("steps", 0, "_Config.steps must be an integer >= 1, got 0."),
    ("steps", 2.0, "_Config.steps must be an integer >= 1, got 2.0."),
    ("steps", True, "_Config.steps must be an integer >= 1, got True."),
    ("rate", 1.0, r"_Config.rate must be a number in \[0, 1\) \(a share\), got 1.0."),
    ("rate", float("nan"), r"_Config.rate must be a number in \[0, 1\) \(a share\), got nan."),
    ("mode", "c", r"_Config.mode must be one of \('a', 'b'\), got 'c'."),
])
def test_config_field_checks_name_the_field_the_rule_and_the_value(field, value, message):
    with pytest.raises(ParameterError, match=message):
        _Config(**{field: value})
