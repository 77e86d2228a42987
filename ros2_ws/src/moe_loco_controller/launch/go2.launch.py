"""ros2 launch moe_loco_controller go2.launch.py [policy:=...] [interface:=eth0] [domain:=0]
[joystick:=joy|go2_remote|none] [sim:=false] [config:=<ROS parameter file>]

Starts the controller node, the joystick node and, for joystick:=joy, the standard ``joy`` driver.
Both nodes get the parameter file (``config:=``, default the packaged ``config/controller.yaml``)
the ROS way; the other arguments, when given, override its parameters. Thin on purpose: what it
adds beyond ``moe-loco-bringup`` (one process, same arguments) is the process split and the
``joy`` driver.
"""

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

from launch import LaunchDescription
from moe_loco_controller.launch_args import LAUNCH_ARGUMENTS, node_arguments, parameter_files


def _nodes(context, *args, **kwargs):
    values = {name: context.launch_configurations[name] for name in LAUNCH_ARGUMENTS}
    cli = node_arguments(values)
    share = get_package_share_directory("moe_loco_controller")
    params = parameter_files(values, f"{share}/config/controller.yaml")
    nodes = [
        Node(
            package="moe_loco_controller",
            executable="controller_node",
            arguments=cli,
            parameters=params,
            output="screen",
        )
    ]
    if values["joystick"] != "none":
        nodes.append(
            Node(
                package="moe_loco_controller",
                executable="joystick_node",
                arguments=cli,
                parameters=params,
                output="screen",
            )
        )
    if values["joystick"] == "joy":
        nodes.append(Node(package="joy", executable="joy_node", output="screen"))
    return nodes


def generate_launch_description():
    return LaunchDescription(
        [
            *(
                DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in LAUNCH_ARGUMENTS.items()
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
