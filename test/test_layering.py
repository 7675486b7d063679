"""The module import graph: layers and no loops.

Layers, lowest first: the core (no ROS: model, decoding, estimator, bag files and reports, ...),
then the ROS layer (``litepose_ros.ros``, the generated messages, the bag tools that join a ROS
graph or build messages) and training (PyTorch) side by side, then the benchmarks, then the
command line that loads them. A module imports its own layer or lower ones, never a higher one
(nor its neighbour: ROS and training stay apart), and no chain of imports (deferred ones
included) leads back to where it started. The core also imports with ROS blocked.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "litepose_ros"

CORE, ROS, TRAINING, BENCHMARKS, CLI = "core", "ros", "training", "benchmarks", "cli"
RANK = {CORE: 0, ROS: 1, TRAINING: 1, BENCHMARKS: 2, CLI: 3}
# Modules of a higher layer that do not live in a package of their own.
ROS_MODULES = {"litepose_ros.bags.evaluate", "litepose_ros.bags.player", "litepose_ros.bags.node_in_the_loop"}
# Python packages that only exist where ROS 2 is installed.
ROS_PACKAGES = (
    "rclpy",
    "std_msgs",
    "sensor_msgs",
    "geometry_msgs",
    "visualization_msgs",
    "diagnostic_msgs",
    "builtin_interfaces",
    "lifecycle_msgs",
    "rcl_interfaces",
    "rosidl_runtime_py",
    "launch",
    "launch_ros",
)


def layer_of(module: str) -> str:
    if module in ROS_MODULES or module.startswith(("litepose_ros.ros", "litepose_ros.msg")):
        return ROS
    if module.startswith("litepose_ros.training"):
        return TRAINING
    if module.startswith("litepose_ros.benchmarks"):
        return BENCHMARKS
    if module.startswith("litepose_ros.cli"):
        return CLI
    return CORE


def module_files() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def imports_of(name: str, path: Path, known: set[str]) -> dict[str, int]:
    """Project modules ``name`` imports (at any depth of the file, deferred ones too) -> line."""
    found: dict[str, int] = {}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def add(target: str, line: int) -> None:
        while target and target not in known and "." in target:
            target = target.rpartition(".")[0]  # an attribute or a generated module: its package
        if target in known or target.startswith("litepose_ros.msg"):
            found.setdefault(target, line)

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("litepose_ros"):
                    add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            if not base.startswith("litepose_ros"):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                add(candidate if candidate in known else base, node.lineno)
    found.pop(name, None)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    files = module_files()
    known = set(files)
    return {name: imports_of(name, path, known) for name, path in files.items()}


def test_no_module_imports_a_higher_layer():
    wrong = []
    for module, targets in import_graph().items():
        for target, line in targets.items():
            if target == "litepose_ros":
                continue  # the package itself (its __init__ joins the message half, imports nothing)
            source_layer, target_layer = layer_of(module), layer_of(target)
            if RANK[target_layer] > RANK[source_layer] or (
                RANK[target_layer] == RANK[source_layer] and target_layer != source_layer
            ):
                wrong.append(f"{module}:{line} ({source_layer}) imports {target} ({target_layer})")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_the_import_graph_has_no_loop():
    graph = import_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    loops = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in graph.get(module, {}):
            if target not in graph or target == "litepose_ros":
                continue
            if state.get(target) == 1:
                loops.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not loops, "import loops:\n" + "\n".join(loops)


def test_the_layer_table_knows_every_module():
    layers = {layer_of(name) for name in module_files()}
    assert layers == set(RANK)
    assert all(name in module_files() for name in ROS_MODULES)


def test_core_imports_with_ros_blocked(tmp_path):
    core = sorted(name for name in module_files() if layer_of(name) == CORE)
    code = f"""
        import importlib, sys
        for name in {ROS_PACKAGES!r}:
            sys.modules[name] = None
        sys.modules["litepose_ros.msg"] = None
        for name in {core!r}:
            importlib.import_module(name)
        leaked = sorted(name for name in sys.modules if name.startswith("litepose_ros.ros")
                        and sys.modules[name] is not None)
        assert not leaked, leaked
        print(len({core!r}))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(core) >= 20


def test_core_modules_import_nothing_from_ros_not_even_deferred():
    """A deferred ``import rclpy`` would pass the blocked-import check and fail only when called."""
    wrong = []
    for name, path in module_files().items():
        if layer_of(name) != CORE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            wrong += [
                f"{name}:{node.lineno} imports {imported}"
                for imported in names
                if imported.split(".")[0] in ROS_PACKAGES
            ]
    assert not wrong, "ROS imports in the core:\n" + "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(ROS_MODULES))
def test_ros_modules_outside_ros_package_are_not_imported_by_the_core(module):
    importers = [
        source for source, targets in import_graph().items() if module in targets and layer_of(source) == CORE
    ]
    assert not importers
