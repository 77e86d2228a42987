"""moe_loco_sim: Simulated Go2 (MuJoCo) that speaks the robot's DDS topics, for sim-to-sim.

An ament_python package for colcon and an ordinary pip-installable package for a venv.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "moe_loco_sim"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
    ],
    install_requires=["numpy", "mujoco", "moe_loco_controller"],
    # colcon test runs pytest only for a package that declares it as a test dependency.
    extras_require={"test": ["pytest"]},
    python_requires=">=3.10",
    zip_safe=True,
    maintainer="MoE-Loco developers",
    maintainer_email="dev@moe-loco.invalid",
    description="Simulated Go2 (MuJoCo) that speaks the robot's DDS topics, for sim-to-sim.",
    license="BSD-3-Clause",
    entry_points={
        "console_scripts": [
            "moe-loco-sim = moe_loco_sim.bridge:main",
            "moe-loco-render = moe_loco_sim.video:main",
        ]
    },
)
