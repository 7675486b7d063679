"""Repair the CMake files of the ROS 2 PyPI wheels in a virtual environment.

Those wheels export CMake targets that name the include directories of the machine that built
them (/opt/python/cp3XX-cp3XX/...). CMake then stops with "Imported target ... includes
non-existent path". This rewrites those paths to this interpreter's Python and numpy include
directories. Idempotent; rerun after any reinstall of the ROS wheels.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import numpy

BUILD_MACHINE_PYTHON = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
BUILD_MACHINE_NUMPY = re.compile(
    r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/(?:_)?core/include"
)


def fix(prefix: Path) -> int:
    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    changed = 0
    for path in sorted((prefix / "share").glob("*/cmake/*.cmake")):
        text = path.read_text()
        new = BUILD_MACHINE_NUMPY.sub(numpy_include, text)
        new = BUILD_MACHINE_PYTHON.sub(python_include, new)
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


if __name__ == "__main__":
    prefix = Path(sys.argv[1] if len(sys.argv) > 1 else sys.prefix)
    print(f"fix_ros_wheel_cmake: rewrote build-machine paths in {fix(prefix)} file(s) under {prefix}")
