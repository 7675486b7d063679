"""litepose_ros: LitePose multi-person 2D pose estimation for ROS 2.

The generated message modules (``litepose_ros.msg``) and this hand-written package can live in
two directories (the CMake install of the messages and the source tree). ``extend_path`` merges
every ``litepose_ros`` directory on ``sys.path`` into one package, so both halves import the same
way in a colcon workspace and in the project virtual environment.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)


def __getattr__(name: str) -> str:
    """``__version__``: the version package.xml gives, read from the distribution metadata that
    CMake/colcon and setup.py write from it (package.xml is the one place it is written down)."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    for distribution in ("litepose_ros", "litepose-ros-python"):
        try:
            return version(distribution)
        except PackageNotFoundError:
            continue
    return "0+unknown"
