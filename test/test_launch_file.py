"""launch/litepose.launch.py: its arguments, the node it starts and the files it names.

``ros2 launch`` cannot run here (no launch package is installable). When ``launch`` and
``launch_ros`` are importable the description is built and inspected with them; otherwise the
file runs against minimal stand-ins of the launch API that record what it asks for. Both paths
check the same facts: the documented arguments are declared, the executable is the installed
``litepose_node``, the parameter and RViz files exist, and the arguments reach the node.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import types
from pathlib import Path

import pytest
from conftest import PROJECT_DIR

LAUNCH_FILE = PROJECT_DIR / "launch" / "litepose.launch.py"
DOCUMENTED_ARGUMENTS = {
    "image_topic",
    "camera_info_topic",
    "input_transport",
    "namespace",
    "params_file",
    "model",
    "use_sim_time",
    "rviz",
    "depth",
    "depth_topic",
    "depth_info_topic",
}


def real_launch_available() -> bool:
    try:
        return (
            importlib.util.find_spec("launch_ros") is not None
            and importlib.util.find_spec("launch.actions") is not None
        )
    except ModuleNotFoundError:  # `launch` resolved to this repository's launch/ folder
        return False


# --- minimal stand-ins of the launch API ---------------------------------------------------------


class Recorded:
    """Any launch entity: remembers its positional and keyword arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class StubLaunchConfiguration(Recorded):
    def perform(self, context) -> str:
        return context.launch_configurations[self.args[0]]


class StubOpaqueFunction(Recorded):
    @property
    def function(self):
        return self.kwargs["function"]


def stub_modules(share_dir: Path) -> dict[str, types.ModuleType]:
    def module(name: str, **attributes) -> types.ModuleType:
        created = types.ModuleType(name)
        created.__dict__.update(attributes)
        return created

    kinds = {
        name: type(name, (Recorded,), {})
        for name in ("LaunchDescription", "DeclareLaunchArgument", "IfCondition", "Node", "LifecycleNode")
    }
    return {
        "launch": module("launch", LaunchDescription=kinds["LaunchDescription"]),
        "launch.actions": module(
            "launch.actions",
            DeclareLaunchArgument=kinds["DeclareLaunchArgument"],
            OpaqueFunction=StubOpaqueFunction,
        ),
        "launch.conditions": module("launch.conditions", IfCondition=kinds["IfCondition"]),
        "launch.substitutions": module("launch.substitutions", LaunchConfiguration=StubLaunchConfiguration),
        "launch_ros": module("launch_ros"),
        "launch_ros.actions": module(
            "launch_ros.actions", Node=kinds["Node"], LifecycleNode=kinds["LifecycleNode"]
        ),
        "ament_index_python": module("ament_index_python"),
        "ament_index_python.packages": module(
            "ament_index_python.packages",
            get_package_share_directory=lambda package: (
                str(share_dir)
                if package == "litepose_ros"
                else pytest.fail(f"the launch file looks up package {package}")
            ),
        ),
    }


def load_with_stubs(monkeypatch) -> types.ModuleType:
    # CMakeLists.txt installs launch/ and config/ into share/litepose_ros: the source tree has the
    # same layout, so it stands in for the installed share directory.
    for name, module in stub_modules(PROJECT_DIR).items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("litepose_launch_under_test", LAUNCH_FILE)
    launch_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_module)
    return launch_module


def describe(monkeypatch, overrides: dict[str, str]) -> tuple[dict, dict, dict]:
    """(declared arguments name -> kwargs, pose node kwargs, rviz node kwargs) for these argument values."""
    launch_module = load_with_stubs(monkeypatch)
    description = launch_module.generate_launch_description()
    entities = description.args[0]
    declared = {e.args[0]: e.kwargs for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    values = {name: kwargs["default_value"] for name, kwargs in declared.items()}
    values.update(overrides)
    context = types.SimpleNamespace(launch_configurations=values)
    opaque = [e for e in entities if isinstance(e, StubOpaqueFunction)]
    assert len(opaque) == 1
    (pose_node,) = opaque[0].function(context)
    assert type(pose_node).__name__ == "LifecycleNode"  # lifecycle tools (ros2 lifecycle) see it
    (rviz_node,) = [e for e in entities if type(e).__name__ == "Node"]
    return declared, pose_node.kwargs, rviz_node.kwargs


# --- the checks ----------------------------------------------------------------------------------


def test_launch_file_parses_and_declares_the_documented_arguments():
    tree = ast.parse(LAUNCH_FILE.read_text())
    declared = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument"
    }
    assert declared == DOCUMENTED_ARGUMENTS
    docstring = ast.get_docstring(tree)
    node_page = (PROJECT_DIR / "docs" / "node.md").read_text()
    for name in DOCUMENTED_ARGUMENTS:
        assert re.search(rf"^\s+{name}\s", docstring, re.MULTILINE), f"{name} missing from the docstring"
        assert f"`{name}`" in node_page, f"{name} missing from docs/node.md"


def check_real_launch_description() -> None:
    """With a ROS 2 installation (launch, launch_ros and this package installed): the real thing."""
    from launch import LaunchContext
    from launch.actions import OpaqueFunction
    from launch.launch_description_sources import get_launch_description_from_python_launch_file

    description = get_launch_description_from_python_launch_file(str(LAUNCH_FILE))
    arguments = {argument.name: argument for argument in description.get_launch_arguments()}
    assert set(arguments) == DOCUMENTED_ARGUMENTS
    context = LaunchContext()
    for name, argument in arguments.items():
        context.launch_configurations[name] = "".join(s.perform(context) for s in argument.default_value)
    (opaque,) = [e for e in description.entities if isinstance(e, OpaqueFunction)]
    (node,) = opaque.execute(context)
    assert node.node_package == "litepose_ros" and node.node_executable == "litepose_node"
    assert Path(context.launch_configurations["params_file"]).is_file()


def test_launch_description_starts_the_installed_node_with_existing_files(monkeypatch):
    if real_launch_available():
        check_real_launch_description()
    declared, node, rviz = describe(monkeypatch, {})
    assert set(declared) == DOCUMENTED_ARGUMENTS
    assert all(kwargs.get("description") for kwargs in declared.values())
    assert node["package"] == "litepose_ros" and node["executable"] == "litepose_node"
    # The executable exists: as a console script here, and CMake installs it for ros2 launch.
    assert Path(sys.executable).with_name("litepose_node").is_file()
    assert "foreach(entry litepose_node litepose)" in (PROJECT_DIR / "CMakeLists.txt").read_text()
    params_file, overrides = node["parameters"]
    assert Path(params_file) == PROJECT_DIR / "config" / "litepose.yaml" and Path(params_file).is_file()
    assert overrides == {"use_sim_time": False, "input_transport": "raw"}  # no model override by default
    assert dict(node["remappings"]) == {
        "image": "/camera/image_raw",
        "camera_info": "/camera/camera_info",
        "depth/image": "/camera/aligned_depth_to_color/image_raw",
        "depth/camera_info": "/camera/aligned_depth_to_color/camera_info",
    }
    assert node["namespace"] == "" and node["name"] == "litepose"
    assert rviz["namespace"].args[0] == "namespace"  # RViz beside the node: relative topics
    assert [(name, value.args[0]) for name, value in rviz["remappings"]] == [("image", "image_topic")]
    rviz_config = Path(rviz["arguments"][rviz["arguments"].index("-d") + 1])
    assert rviz_config == PROJECT_DIR / "config" / "litepose.rviz" and rviz_config.is_file()
    assert rviz["condition"].args[0].args[0] == "rviz"  # only with rviz:=true


def test_launch_arguments_reach_the_node(monkeypatch, tmp_path):
    params = tmp_path / "mine.yaml"
    _, node, _ = describe(
        monkeypatch,
        {
            "image_topic": "/front/color/image_raw",
            "namespace": "robot1",
            "model": "/models/xs.onnx",
            "use_sim_time": "true",
            "input_transport": "compressed",
            "params_file": str(params),
            "camera_info_topic": "/front/color/camera_info",
            "depth": "true",
            "depth_topic": "/front/depth/image_rect",
            "depth_info_topic": "/front/depth/camera_info",
        },
    )
    assert node["namespace"] == "robot1"
    assert node["parameters"] == [
        str(params),
        {
            "use_sim_time": True,
            "input_transport": "compressed",
            "model_path": "/models/xs.onnx",
            "depth.enabled": True,
        },
    ]
    assert dict(node["remappings"]) == {
        "image": "/front/color/image_raw",
        "camera_info": "/front/color/camera_info",
        "depth/image": "/front/depth/image_rect",
        "depth/camera_info": "/front/depth/camera_info",
    }


def test_rviz_config_shows_camera_image_annotated_image_and_markers():
    import yaml

    config = yaml.safe_load((PROJECT_DIR / "config" / "litepose.rviz").read_text())
    manager = config["Visualization Manager"]
    displays = {d["Name"]: d for d in manager["Displays"]}
    assert displays["Camera image"]["Class"] == "rviz_default_plugins/Image"
    # Relative topics: RViz runs in the node's namespace, `image` remapped to the camera topic.
    assert displays["Camera image"]["Topic"]["Value"] == "image"
    assert displays["Annotated image"]["Topic"]["Value"] == "image_annotated"
    assert displays["Skeletons"]["Class"] == "rviz_default_plugins/MarkerArray"
    assert displays["Skeletons"]["Topic"]["Value"] == "markers"
    assert set(displays["Skeletons"]["Namespaces"]) == {"joints", "limbs", "labels"}
    # The frame of the bundled sample camera (tools/make_sample_bag.py).
    assert manager["Global Options"]["Fixed Frame"] == "vtest_camera_optical_frame"
    sample_bag_tool = (PROJECT_DIR / "tools" / "make_sample_bag.py").read_text()
    assert 'FRAME_ID = "vtest_camera_optical_frame"' in sample_bag_tool
