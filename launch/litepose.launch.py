"""Start the LitePose pose node (and optionally RViz) on a camera stream.

    ros2 launch litepose_ros litepose.launch.py image_topic:=/camera/image_raw rviz:=true

Arguments:
  image_topic        camera image topic the node's `image` input is remapped to
                     (with input_transport:=compressed the node reads <image_topic>/compressed)
  camera_info_topic  CameraInfo topic of that camera (for metric markers)
  depth              true: 3D keypoints from a depth image registered to the colour camera
  depth_topic        that depth image (16UC1 millimetres or 32FC1 metres)
  depth_info_topic   its CameraInfo
  input_transport    raw or compressed
  namespace          namespace of the node and of its output topics
  params_file        parameter file (default: the package's config/litepose.yaml)
  model              model file; empty: the one in params_file, else the bundled model
  use_sim_time       use /clock (true when playing a bag with --clock)
  rviz               also start RViz with the package's config/litepose.rviz
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

PACKAGE = "litepose_ros"


def _share_file(*parts: str) -> str:
    return str(Path(get_package_share_directory(PACKAGE), *parts))


def _node_actions(context):
    """The pose node (a lifecycle node: it configures and activates itself unless its parameter
    auto_activate is false), with overrides only for the arguments that were given."""

    def value(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    overrides = {
        "use_sim_time": value("use_sim_time").lower() in ("true", "1", "yes"),
        "input_transport": value("input_transport"),
    }
    if value("model"):
        overrides["model_path"] = value("model")
    if value("depth").lower() in ("true", "1", "yes"):
        overrides["depth.enabled"] = True
    return [
        LifecycleNode(
            package=PACKAGE,
            executable="litepose_node",
            name="litepose",
            namespace=value("namespace"),
            parameters=[value("params_file"), overrides],
            remappings=[
                ("image", value("image_topic")),
                ("camera_info", value("camera_info_topic")),
                ("depth/image", value("depth_topic")),
                ("depth/camera_info", value("depth_info_topic")),
            ],
            output="screen",
            emulate_tty=True,
        )
    ]


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument(
            "image_topic",
            default_value="/camera/image_raw",
            description="Camera image topic (sensor_msgs/Image); with "
            "input_transport:=compressed, <image_topic>/compressed is read",
        ),
        DeclareLaunchArgument(
            "camera_info_topic",
            default_value="/camera/camera_info",
            description="CameraInfo of that camera (metric markers)",
        ),
        DeclareLaunchArgument(
            "depth",
            default_value="false",
            choices=["true", "false"],
            description="3D keypoints from depth_topic (else the params_file's depth.enabled)",
        ),
        DeclareLaunchArgument(
            "depth_topic",
            default_value="/camera/aligned_depth_to_color/image_raw",
            description="Depth image registered to the colour camera (16UC1 mm or 32FC1 m)",
        ),
        DeclareLaunchArgument(
            "depth_info_topic",
            default_value="/camera/aligned_depth_to_color/camera_info",
            description="CameraInfo of the depth image",
        ),
        DeclareLaunchArgument(
            "input_transport",
            default_value="raw",
            choices=["raw", "compressed"],
            description="raw: sensor_msgs/Image; compressed: sensor_msgs/CompressedImage",
        ),
        DeclareLaunchArgument(
            "namespace", default_value="", description="Namespace of the node and its output topics"
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=_share_file("config", "litepose.yaml"),
            description="Parameter file of the node",
        ),
        DeclareLaunchArgument(
            "model",
            default_value="",
            description="Model file (.onnx); empty: params_file's model_path, else the bundled model",
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="false",
            choices=["true", "false"],
            description="Use simulation time (/clock), e.g. when playing a bag",
        ),
        DeclareLaunchArgument(
            "rviz",
            default_value="false",
            choices=["true", "false"],
            description="Also start RViz with config/litepose.rviz",
        ),
    ]
    # RViz in the node's namespace: the config's topics are relative (image_annotated, markers),
    # and its camera display reads `image`, remapped to the camera topic like the node's input.
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        namespace=LaunchConfiguration("namespace"),
        remappings=[("image", LaunchConfiguration("image_topic"))],
        arguments=["-d", _share_file("config", "litepose.rviz")],
        parameters=[{"use_sim_time": LaunchConfiguration("use_sim_time")}],
        condition=IfCondition(LaunchConfiguration("rviz")),
        output="screen",
    )
    return LaunchDescription([*arguments, OpaqueFunction(function=_node_actions), rviz])
