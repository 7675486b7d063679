"""litepose_ros: LitePose multi-person 2D pose estimation for ROS 2.

The generated message modules (``litepose_ros.msg``) and this hand-written package can live in
two directories (the CMake install of the messages and the source tree). ``extend_path`` merges
every ``litepose_ros`` directory on ``sys.path`` into one package, so both halves import the same
way in a colcon workspace and in the project virtual environment.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
