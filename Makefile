# MoE-Loco for the Unitree Go2. Every target sets up what it needs (scripts/setup.sh is idempotent).
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
RUFF := $(VENV)/bin/ruff

# The venv is the ROS prefix (our interface package is built into it); tests stay on this host.
export AMENT_PREFIX_PATH := $(VENV)
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export FASTDDS_BUILTIN_TRANSPORTS := UDPv4
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup test lint format demo clean bench bench-policy bench-loop bench-sim bench-env bench-train
.PHONY: colcon hadolint
.PHONY: bench-faults fuzz bench-learn bench-gpu

setup:
	@bash scripts/setup.sh

lint: setup hadolint
	$(RUFF) check .
	$(RUFF) format --check .

# The onboard image's Dockerfile (it cannot be built here: no Docker engine).
hadolint: setup
	$(VENV)/bin/hadolint --config docker/jetson/hadolint.yaml docker/jetson/Dockerfile

# colcon build + colcon test of ros2_ws/ against the venv's ROS 2 wheels, then an install-tree check.
colcon: setup
	@bash scripts/colcon_check.sh

format: setup
	$(RUFF) format .
	$(RUFF) check --fix .

test: lint colcon
	$(PY) -m pytest

demo: setup
	$(PY) scripts/demo.py $(DEMO_ARGS)

bench: bench-policy bench-loop bench-sim bench-env bench-train

bench-policy: setup
	$(PY) benchmarks/bench_policy.py

bench-loop: setup
	$(PY) benchmarks/bench_loop.py

fuzz: setup
	$(PY) scripts/fuzz.py $(FUZZ_ARGS)

bench-faults: setup
	$(PY) benchmarks/bench_faults.py

bench-sim: setup
	$(PY) benchmarks/bench_sim.py

bench-env: setup
	$(PY) benchmarks/bench_env.py

bench-train: setup
	$(PY) benchmarks/bench_train.py

bench-learn: setup
	$(PY) benchmarks/bench_learn.py $(LEARN_ARGS)

bench-gpu: setup
	$(PY) benchmarks/bench_gpu.py $(GPU_ARGS)

clean:
	rm -rf build .pytest_cache .ruff_cache
