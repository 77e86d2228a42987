"""moe_loco_controller: the onboard runtime (ROS-free core, Go2 link, thin ROS 2 nodes).

An ament_python package for colcon and an ordinary pip-installable package for a venv.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "moe_loco_controller"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.json")),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
    ],
    install_requires=["numpy", "pyyaml", "onnxruntime", "rosbags"],
    # colcon test runs pytest only for a package that declares it as a test dependency.
    extras_require={"test": ["pytest"]},
    python_requires=">=3.10",
    zip_safe=True,
    maintainer="MoE-Loco developers",
    maintainer_email="dev@moe-loco.invalid",
    description="MoE-Loco runtime for the Unitree Go2",
    license="BSD-3-Clause",
    entry_points={
        "console_scripts": [
            "moe-loco-bringup = moe_loco_controller.nodes.bringup:main",
            "controller_node = moe_loco_controller.nodes.bringup:controller_main",
            "joystick_node = moe_loco_controller.nodes.bringup:joystick_main",
            "moe-loco-record = moe_loco_controller.nodes.recorder:main",
            "moe-loco-replay = moe_loco_controller.nodes.replay:main",
        ]
    },
)
