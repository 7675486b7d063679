"""Bundled real footage (see README.md here): frames of OpenCV's vtest.avi sample video."""

from __future__ import annotations

from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent
VTEST_DIR = SAMPLES_DIR / "vtest"
# Distinct pedestrians visible in the 48 bundled frames, counted once by eye (README.md here:
# who they are and when they are seen); the demo compares the distinct track ids with it.
VTEST_PEDESTRIANS = 7


def vtest_frame_paths() -> list[Path]:
    """The bundled vtest frames (768 x 576 JPEG), in video order."""
    paths = sorted(VTEST_DIR.glob("vtest_*.jpg"))
    if not paths:
        raise FileNotFoundError(f"no bundled sample frames in {VTEST_DIR}: the package is incomplete")
    return paths
