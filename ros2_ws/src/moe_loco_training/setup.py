"""moe_loco_training: MoE-Loco training: environments, MoE actor-critic, PPO, export, analysis.

An ament_python package for colcon and an ordinary pip-installable package for a venv.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "moe_loco_training"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=[
        "numpy",
        "array-api-compat",
        "torch",
        "onnx",
        "matplotlib",
        "scikit-learn",
        "moe_loco_controller",
        "moe_loco_sim",
    ],
    # colcon test runs pytest only for a package that declares it as a test dependency.
    extras_require={"test": ["pytest"]},
    python_requires=">=3.10",
    zip_safe=True,
    maintainer="MoE-Loco developers",
    maintainer_email="dev@moe-loco.invalid",
    description="MoE-Loco training: environments, MoE actor-critic, PPO, export, analysis.",
    license="BSD-3-Clause",
    entry_points={
        "console_scripts": [
            "moe-loco-export = moe_loco_training.export:main",
            "moe-loco-benchmark = moe_loco_training.benchmark.runner:main",
            "moe-loco-train = moe_loco_training.train.cli:main",
            "moe-loco-analyze = moe_loco_training.analysis.cli:main",
        ]
    },
)
