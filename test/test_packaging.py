"""How the package installs: colcon (ROS 2 workspace), the project venv, and what setup.py refuses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

from conftest import PROJECT_DIR

VENV_PREFIX = Path(sys.prefix)
# .venv-*: the other distributions' venvs (make setup ROS_DISTRO=...), whose share/ holds ROS packages.
NOT_SOURCES = shutil.ignore_patterns(
    ".venv",
    ".venv-*",
    "build",
    "install",
    "log",
    ".git",
    "__pycache__",
    "demo_output",
    "runs",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
)
PYTHON_DIR = f"python{sys.version_info.major}.{sys.version_info.minor}"


def run_python(code: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_core_library_imports_without_rclpy_and_inference_without_torch(tmp_path):
    # Block rclpy (and torch for the inference path) the way a missing install would.
    result = run_python(
        """
        import importlib, pkgutil, sys
        sys.modules["rclpy"] = None
        import litepose_ros
        skipped = ("litepose_ros.ros", "litepose_ros.msg")
        names = [m.name for m in pkgutil.walk_packages(litepose_ros.__path__, "litepose_ros.")
                 if not m.name.startswith(skipped)]
        for name in names:
            importlib.import_module(name)
        print(len(names))
    """,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 5

    inference_modules = [
        "litepose_ros.layouts",
        "litepose_ros.dds",
        "litepose_ros.engine",
        "litepose_ros.preprocess",
        "litepose_ros.decoding",
        "litepose_ros.estimator",
        "litepose_ros.drawing",
    ]
    result = run_python(
        f"""
        import importlib, sys
        sys.modules["torch"] = None
        sys.modules["rclpy"] = None
        for name in {inference_modules!r}:
            importlib.import_module(name)
    """,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr


def test_venv_holds_messages_and_source_as_one_package(tmp_path):
    result = run_python(
        """
        import litepose_ros, litepose_ros.layouts
        from litepose_ros.msg import PersonArray
        print(litepose_ros.layouts.__file__)
        print(PersonArray.__module__)
    """,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    layouts_file, message_module = result.stdout.split()
    # Hand-written code comes from the source tree, never from a stale installed copy.
    assert Path(layouts_file).resolve() == (PROJECT_DIR / "litepose_ros" / "layouts.py").resolve()
    assert message_module.startswith("litepose_ros.msg")
    assert shutil.which("litepose", path=str(VENV_PREFIX / "bin"))
    assert shutil.which("litepose_node", path=str(VENV_PREFIX / "bin"))


def test_setup_py_refuses_a_message_less_install(tmp_path):
    source = tmp_path / "litepose_ros"
    shutil.copytree(PROJECT_DIR, source, ignore=NOT_SOURCES)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "wheels"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "message-less" in result.stdout + result.stderr
    assert not list(tmp_path.rglob("*.whl"))


def test_colcon_builds_the_package_in_a_workspace(tmp_path):
    colcon = shutil.which("colcon", path=str(VENV_PREFIX / "bin"))
    assert colcon, "colcon is part of requirements/ros.txt"
    shutil.copytree(PROJECT_DIR, tmp_path / "src" / "litepose_ros", ignore=NOT_SOURCES)
    env = dict(
        os.environ,
        AMENT_PREFIX_PATH=str(VENV_PREFIX),
        CMAKE_PREFIX_PATH=str(VENV_PREFIX),
        PATH=f"{VENV_PREFIX / 'bin'}{os.pathsep}{os.environ['PATH']}",
    )
    build = subprocess.run(
        [
            colcon,
            "build",
            "--event-handlers",
            "console_direct+",
            "--cmake-args",
            "-DBUILD_TESTING=OFF",
            f"-DPython3_EXECUTABLE={sys.executable}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    prefix = tmp_path / "install" / "litepose_ros"
    site = prefix / "lib" / PYTHON_DIR / "site-packages"
    assert (site / "litepose_ros" / "msg" / "_person_array.py").is_file()
    assert (site / "litepose_ros" / "layouts.py").is_file()
    for executable in ("litepose_node", "litepose"):
        assert os.access(prefix / "lib" / "litepose_ros" / executable, os.X_OK)
    assert (prefix / "share" / "litepose_ros" / "package.xml").is_file()

    # The installed package works on its own: the messages and the code both come from the install.
    library_path = f"{prefix / 'lib'}{os.pathsep}{os.environ.get('LD_LIBRARY_PATH', '')}"
    installed_env = dict(env, PYTHONPATH=str(site), LD_LIBRARY_PATH=library_path)
    result = run_python(
        """
        import litepose_ros.layouts
        from litepose_ros.msg import PersonArray, Person
        print(litepose_ros.layouts.__file__)
        print(len(PersonArray(persons=[Person()]).persons))
    """,
        cwd=tmp_path,
        env=installed_env,
    )
    assert result.returncode == 0, result.stderr
    layouts_file, count = result.stdout.split()
    assert Path(layouts_file).is_relative_to(site) and count == "1"
    # The installed executables' entry points exist in the install (ros2 run / ros2 launch use them).
    for executable in ("litepose_node", "litepose"):
        script = (prefix / "lib" / "litepose_ros" / executable).read_text()
        module = script.split("from ", 1)[1].split(" import main", 1)[0]
        found = run_python(
            f"import {module}; print({module}.__file__, callable({module}.main))", tmp_path, installed_env
        )
        assert found.returncode == 0, found.stderr
        entry_file, is_callable = found.stdout.split()
        assert Path(entry_file).is_relative_to(site) and is_callable == "True", (executable, found.stdout)
    assert sysconfig.get_paths()["include"]  # the interpreter colcon used has headers (python3-dev)


def test_version_is_written_down_once_in_package_xml():
    from xml.etree import ElementTree

    import litepose_ros

    project = Path(__file__).resolve().parents[1]
    version = ElementTree.parse(project / "package.xml").getroot().findtext("version").strip()
    assert litepose_ros.__version__ == version
    assert f"version={version!r}" not in (project / "setup.py").read_text().replace('"', "'")
    assert "__version__ =" not in (project / "litepose_ros" / "__init__.py").read_text()
    assert (project / "LICENSE").read_text().startswith("MIT License")
    assert f"\n{version} (" in (project / "CHANGELOG.rst").read_text()


def test_benchmark_pages_go_to_the_checkout_or_to_the_current_directory_never_into_an_install(tmp_path):
    from litepose_ros.benchmarks.report import DEFAULT_RESULTS_DIR, source_checkout

    assert source_checkout() == PROJECT_DIR
    assert DEFAULT_RESULTS_DIR == PROJECT_DIR / "docs" / "benchmarks"
    installed = tmp_path / "site-packages" / "litepose_ros"
    (installed / "benchmarks").mkdir(parents=True)
    for name in ("__init__.py", "benchmarks/__init__.py", "benchmarks/report.py"):
        shutil.copy(PROJECT_DIR / "litepose_ros" / name, installed / name)
    work = tmp_path / "work"
    work.mkdir()
    result = run_python(
        """
        from litepose_ros.benchmarks import report
        print(report.__file__)
        print(report.source_checkout())
        print(report.DEFAULT_RESULTS_DIR)
    """,
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(installed.parent)},
    )
    assert result.returncode == 0, result.stderr
    module_file, checkout, results = result.stdout.split("\n")[:3]
    assert module_file.startswith(str(installed))
    assert checkout == "None" and results == str(work / "benchmarks")


def test_the_python_3_10_runtime_requirements_name_the_same_packages_pinned():
    # Humble's Python 3.10 gets its own versions (runtime.txt's need 3.11+); the same packages.
    def pins(name: str) -> dict[str, str]:
        lines = (PROJECT_DIR / "requirements" / name).read_text().splitlines()
        requirements = [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]
        return dict(requirement.split("==") for requirement in requirements)

    current, python310 = pins("runtime.txt"), pins("runtime-py310.txt")
    assert set(python310) == set(current), set(python310) ^ set(current)
    assert all(version.replace(".", "").isdigit() for version in python310.values()), python310
