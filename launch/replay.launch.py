"""Replay a recorded run: ``ros2 launch launch/replay.launch.py bag:=runs/<ts>/bag [mode:=node]``

Runs ``moe-loco-replay`` (mode node: the real controller node under the namespace
``moe_loco_replay``, fed the recorded robot states and commands over ROS in real time, its joint
targets compared with the recorded ones). The command line comes from
``moe_loco_controller.launch_args.replay_arguments``.
"""

from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction

from launch import LaunchDescription
from moe_loco_controller.launch_args import REPLAY_LAUNCH_ARGUMENTS, replay_arguments


def _replay(context, *args, **kwargs):
    values = {name: context.launch_configurations[name] for name in REPLAY_LAUNCH_ARGUMENTS}
    return [ExecuteProcess(cmd=["moe-loco-replay", *replay_arguments(values)], output="screen")]


def generate_launch_description():
    return LaunchDescription(
        [
            *(
                DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in REPLAY_LAUNCH_ARGUMENTS.items()
            ),
            OpaqueFunction(function=_replay),
        ]
    )
