"""Constant-velocity Kalman filter on box centre and size, for many tracks at once.

The state of each track is, for each of the four box quantities (centre x, centre y, width,
height), a position and a velocity in pixels and pixels per second. With the process noise and
the measurement noise of one quantity independent of the others, the 8x8 covariance of the usual
formulation is block diagonal: four independent 2x2 filters per track. They are kept as three
arrays of the covariance entries, shape (T, 4), so that prediction and update are a few
element-wise numpy operations over all tracks (no per-track matrices, no Python loop).

Noise is proportional to the box height, so that the filter behaves the same for near (large)
and far (small) people: ``acceleration_noise`` in box heights per second squared (white noise
acceleration, integrated over the prediction interval) and ``measurement_noise`` in box heights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Initial velocity uncertainty of a new track, in box heights per second (a walking person
# covers about half to one body height per second).
INITIAL_VELOCITY_STD = 1.0
# Heights below this (pixels) are treated as this, so that noise never vanishes.
MIN_HEIGHT = 1.0


def boxes_to_measurements(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) corner boxes x0, y0, x1, y1 -> (N, 4) centre x, centre y, width, height."""
    return np.stack(
        [
            (boxes[:, 0] + boxes[:, 2]) * 0.5,
            (boxes[:, 1] + boxes[:, 3]) * 0.5,
            boxes[:, 2] - boxes[:, 0],
            boxes[:, 3] - boxes[:, 1],
        ],
        axis=1,
    )


def measurements_to_boxes(states: np.ndarray) -> np.ndarray:
    """(N, 4) centre x, centre y, width, height -> (N, 4) corner boxes x0, y0, x1, y1."""
    half = states[:, 2:] * 0.5
    return np.concatenate([states[:, :2] - half, states[:, :2] + half], axis=1)


@dataclass
class BoxKalman:
    """Kalman states of T tracks: position, velocity and the 2x2 covariance per box quantity."""

    position: np.ndarray  # (T, 4) centre x, centre y, width, height (pixels)
    velocity: np.ndarray  # (T, 4) their rates (pixels per second)
    var_position: np.ndarray  # (T, 4) covariance entries of each (position, velocity) pair
    cov_position_velocity: np.ndarray
    var_velocity: np.ndarray

    @classmethod
    def empty(cls) -> BoxKalman:
        zeros = np.zeros((0, 4))
        return cls(zeros, zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy())

    @classmethod
    def start(cls, measurements: np.ndarray, measurement_noise: float) -> BoxKalman:
        """New tracks at (N, 4) measured centre and size, not moving, velocity uncertain."""
        height = np.maximum(measurements[:, 3:4], MIN_HEIGHT)
        ones = np.ones((1, 4))
        return cls(
            position=measurements.astype(np.float64, copy=True),
            velocity=np.zeros_like(measurements, dtype=np.float64),
            var_position=(measurement_noise * height) ** 2 * ones,
            cov_position_velocity=np.zeros((len(measurements), 4)),
            var_velocity=(INITIAL_VELOCITY_STD * height) ** 2 * ones,
        )

    def __len__(self) -> int:
        return len(self.position)

    def concatenate(self, other: BoxKalman) -> BoxKalman:
        pairs = zip(self._arrays(), other._arrays(), strict=True)
        return BoxKalman(*(np.concatenate([a, b]) for a, b in pairs))

    def select(self, index: np.ndarray) -> BoxKalman:
        """The tracks at ``index`` (integer indices or a boolean mask), as a new filter."""
        return BoxKalman(*(a[index] for a in self._arrays()))

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (
            self.position,
            self.velocity,
            self.var_position,
            self.cov_position_velocity,
            self.var_velocity,
        )

    def predict(self, dt: float, acceleration_noise: float) -> None:
        """Move every track ``dt`` seconds forward in place (constant velocity)."""
        if dt <= 0.0 or len(self) == 0:
            return
        height = np.maximum(self.position[:, 3:4], MIN_HEIGHT)
        q = (acceleration_noise * height) ** 2  # (T, 1): white-noise acceleration intensity
        self.position += dt * self.velocity
        # P' = F P F^T + Q with F = [[1, dt], [0, 1]], Q = q [[dt^3/3, dt^2/2], [dt^2/2, dt]].
        self.var_position += (
            dt * (2.0 * self.cov_position_velocity + dt * self.var_velocity) + q * dt**3 / 3.0
        )
        self.cov_position_velocity += dt * self.var_velocity + q * dt**2 / 2.0
        self.var_velocity += q * dt
        # A box cannot shrink below a pixel, however fast it was shrinking.
        np.maximum(self.position[:, 2:], MIN_HEIGHT, out=self.position[:, 2:])

    def update(self, index: np.ndarray, measurements: np.ndarray, measurement_noise: float) -> None:
        """Correct the tracks at integer ``index`` with their (M, 4) measured centre and size."""
        if len(index) == 0:
            return
        height = np.maximum(measurements[:, 3:4], MIN_HEIGHT)
        r = (measurement_noise * height) ** 2
        var_p = self.var_position[index]
        cov_pv = self.cov_position_velocity[index]
        innovation_var = var_p + r
        gain_p = var_p / innovation_var
        gain_v = cov_pv / innovation_var
        residual = measurements - self.position[index]
        self.position[index] += gain_p * residual
        self.velocity[index] += gain_v * residual
        self.var_velocity[index] -= gain_v * cov_pv
        self.var_position[index] = (1.0 - gain_p) * var_p
        self.cov_position_velocity[index] = (1.0 - gain_p) * cov_pv
