"""One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) for keypoint coordinates, vectorised.

A first-order low-pass filter whose cutoff rises with the speed of the signal: a still joint is
smoothed strongly (cutoff ``min_cutoff``, Hz), a moving one follows with little lag (cutoff
``min_cutoff + beta * |speed|``, speed in pixels per second, itself low-passed at ``d_cutoff``).
The time between samples comes from the image stamps, so irregular frame rates are handled.
"""

from __future__ import annotations

import math

import numpy as np


def smoothing_factor(cutoff_hz: np.ndarray | float, dt: np.ndarray | float) -> np.ndarray | float:
    """Weight of the new sample for an exponential filter with this cutoff over ``dt`` seconds."""
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


def one_euro_step(
    value: np.ndarray,
    previous: np.ndarray,
    previous_rate: np.ndarray,
    dt: np.ndarray,
    *,
    min_cutoff: float,
    beta: float,
    d_cutoff: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One filter step for arrays of samples.

    ``value`` (..., 2) new raw coordinates, ``previous`` the filtered coordinates and
    ``previous_rate`` the filtered rate (pixels per second) of the last step, ``dt`` (...)
    seconds since then (positive, broadcast over the last axis). Returns the filtered
    coordinates and the filtered rate.
    """
    dt = np.asarray(dt)[..., None]
    rate = (value - previous) / dt
    rate_alpha = smoothing_factor(d_cutoff, dt)
    rate_hat = previous_rate + rate_alpha * (rate - previous_rate)
    cutoff = min_cutoff + beta * np.abs(rate_hat)
    alpha = smoothing_factor(cutoff, dt)
    return previous + alpha * (value - previous), rate_hat
