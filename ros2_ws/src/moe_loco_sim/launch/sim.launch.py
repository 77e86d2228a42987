"""ros2 launch moe_loco_sim sim.launch.py [policy:=...] [terrain:=mixed] [contact:=menagerie]
[joystick:=joy|go2_remote|none] [viewer:=false]

Sim-to-sim: the MuJoCo Go2 (``moe-loco-sim``, domain 1 on ``lo``, the robot's own DDS topics) and
the controller's launch file with ``sim:=true``. Thin: the bridge's command line comes from
``moe_loco_sim.launch_args``; everything else is ``go2.launch.py``.
"""

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from moe_loco_controller.launch_args import LAUNCH_ARGUMENTS
from moe_loco_sim.launch_args import SIM_LAUNCH_ARGUMENTS, bridge_arguments


def _bridge(context, *args, **kwargs):
    values = {name: context.launch_configurations[name] for name in SIM_LAUNCH_ARGUMENTS}
    return [
        Node(
            package="moe_loco_sim",
            executable="moe-loco-sim",
            arguments=bridge_arguments(values),
            output="screen",
        )
    ]


def generate_launch_description():
    controller = get_package_share_directory("moe_loco_controller")
    passed = {name: LaunchConfiguration(name) for name in LAUNCH_ARGUMENTS if name != "sim"}
    declared = {**{k: v for k, v in LAUNCH_ARGUMENTS.items() if k != "sim"}, **SIM_LAUNCH_ARGUMENTS}
    return LaunchDescription(
        [
            *(
                DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in declared.items()
            ),
            OpaqueFunction(function=_bridge),
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(f"{controller}/launch/go2.launch.py"),
                launch_arguments={**passed, "sim": "true"}.items(),
            ),
        ]
    )
