"""camera_info K is validated before markers use it: non-finite or absurd values fall back to the
documented scaling (with a reason), an all-zero K is the usual 'uncalibrated' (no reason)."""

from __future__ import annotations

import math

import pytest

from litepose_ros.ros.markers import camera_info_problem

GOOD = [665.1, 0.0, 383.5, 0.0, 665.1, 287.5, 0.0, 0.0, 1.0]


def k_with(**values: float) -> list[float]:
    k = list(GOOD)
    for name, value in values.items():
        k[{"fx": 0, "cx": 2, "fy": 4, "cy": 5}[name]] = value
    return k


def test_a_calibrated_k_is_accepted():
    assert camera_info_problem(GOOD, 768, 576) is None
    assert camera_info_problem([0.0] * 9, 768, 576) is None  # uncalibrated: the documented fallback


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"cx": math.nan}, "cx"),
        ({"cy": math.inf}, "cy"),
        ({"fx": math.inf}, "fx"),
        ({"fx": 1e-300}, "fx"),
        ({"fy": 1e300}, "fy"),
        ({"fx": -600.0}, "fx"),
        ({"cx": 1e9}, "cx"),
    ],
)
def test_broken_k_is_refused_with_the_reason(values, reason):
    problem = camera_info_problem(k_with(**values), 768, 576)
    assert problem is not None and reason in problem
