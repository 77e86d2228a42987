"""The robot: ``ros2 launch launch/go2.launch.py [policy:=...] [interface:=eth0] ...``

The same as ``ros2 launch moe_loco_controller go2.launch.py`` (it includes it); its arguments are
listed in ``moe_loco_controller.launch_args.LAUNCH_ARGUMENTS``.
"""

from ament_index_python.packages import get_package_share_directory
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

from launch import LaunchDescription


def generate_launch_description():
    share = get_package_share_directory("moe_loco_controller")
    return LaunchDescription(
        [IncludeLaunchDescription(PythonLaunchDescriptionSource(f"{share}/launch/go2.launch.py"))]
    )
