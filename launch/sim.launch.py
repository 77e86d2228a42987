"""Sim-to-sim: ``ros2 launch launch/sim.launch.py [policy:=...] [terrain:=mixed] ...``

The same as ``ros2 launch moe_loco_sim sim.launch.py`` (it includes it): the MuJoCo Go2 on the
robot's DDS topics (domain 1 on ``lo``) and the controller with ``sim:=true``. Without ROS 2's
launch tools, ``make demo`` runs the same parts in one script.
"""

from ament_index_python.packages import get_package_share_directory
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

from launch import LaunchDescription


def generate_launch_description():
    share = get_package_share_directory("moe_loco_sim")
    return LaunchDescription(
        [IncludeLaunchDescription(PythonLaunchDescriptionSource(f"{share}/launch/sim.launch.py"))]
    )
