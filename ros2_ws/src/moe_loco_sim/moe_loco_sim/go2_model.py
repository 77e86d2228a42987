"""The Unitree Go2 as a MuJoCo model, built in code (``MjSpec``) from ``reference/go2_facts.md``.

Kinematics, masses, centres of mass and inertias are Unitree's URDF figures as carried into MJCF by
MuJoCo Menagerie (section 1 of the facts); collision comes from primitives only (section 3); joint
ranges, torque limits and joint names come from :mod:`moe_loco_controller.core.go2`.

The robot is torque-controlled: one ``motor`` actuator per joint, gear 1, ``ctrlrange`` = the
torque limit. The caller applies the PD law (the sim bridge applies kp/kd from ``LowCmd_``).
``actuation="pd"`` builds the other variant, for fixed-gain stepping in C (``mujoco.rollout``
substeps): position servos whose force is ``kp (ctrl - q) - kd dq`` clipped to the torque limit,
exactly the deployment PD law evaluated at every physics step, with ``ctrl`` the joint target.

Declaration order is Menagerie's, legs FL, FR, RL, RR, for joints, ``qpos``/``qvel`` and actuators
alike; SDK order is FR, FL, RR, RL. Never index by position: :class:`Go2Indices` maps SDK order
to the model's addresses by name.

Names (``prefix`` first when one is given): bodies ``base``, ``FR_hip``, ``FR_thigh``, ``FR_calf``
...; joints ``base_free`` and ``FR_hip_joint`` ...; actuators ``FR_hip`` ...; foot geoms ``FR_foot``
...; sites ``imu`` and ``FR_foot``...; sensors ``imu_quat``, ``imu_gyro``, ``imu_acc``,
``imu_linvel`` (privileged: base linear velocity in the IMU frame) and ``FR_foot_touch`` ....
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import yaml

from moe_loco_controller.core import go2

# ----------------------------------------------------------------------------- the figures
DECLARATION_LEGS = ("FL", "FR", "RL", "RR")
"""Leg order of declaration in the model (Menagerie's), which is not the SDK order."""

TOTAL_MASS = 15.206
"""Mass of the whole robot [kg] (facts, section 1)."""

BASE_SPAWN_HEIGHT = 0.445
"""Menagerie's base height at spawn, feet clear of the ground [m]."""

IMU_POS = (-0.02557, 0.0, 0.04232)
"""IMU site in the base frame [m]."""

FOOT_RADIUS = 0.022
FOOT_POS = (-0.002, 0.0, -0.213)
"""Foot sphere centre in the calf frame [m]."""

THIGH_LENGTH = 0.213
CALF_LENGTH = 0.213

JOINT_DAMPING = 2.0
JOINT_ARMATURE = 0.01
JOINT_FRICTIONLOSS = 0.2

TOUCH_SITE_RADIUS = FOOT_RADIUS + 0.004
"""Touch sensors sum the normal force of contacts inside this sphere around each foot centre."""


@dataclass(frozen=True)
class Inertial:
    """Mass properties of one body, in the body frame (MJCF ``<inertial>``)."""

    mass: float
    com: tuple[float, float, float]
    quat: tuple[float, float, float, float]
    """Orientation of the principal-axes frame, w, x, y, z."""
    diag: tuple[float, float, float]
    """Principal moments [kg m^2]."""


_HIP_DIAG = (0.00088403, 0.000596003, 0.000479967)
_THIGH_DIAG = (0.00594973, 0.00584149, 0.000878787)
_CALF_DIAG = (0.0014901, 0.00146356, 5.31397e-05)

BASE_INERTIAL = Inertial(
    6.921,
    (0.021112, 0.0, -0.005366),
    (-0.000543471, 0.713435, -0.00173769, 0.700719),
    (0.107027, 0.0980771, 0.0244531),
)

HIP_INERTIAL = {
    "FL": Inertial(
        0.678, (-0.0054, 0.00194, -0.000105), (0.497014, 0.499245, 0.505462, 0.498237), _HIP_DIAG
    ),
    "FR": Inertial(
        0.678, (-0.0054, -0.00194, -0.000105), (0.498237, 0.505462, 0.499245, 0.497014), _HIP_DIAG
    ),
    "RL": Inertial(
        0.678, (0.0054, 0.00194, -0.000105), (0.505462, 0.498237, 0.497014, 0.499245), _HIP_DIAG
    ),
    "RR": Inertial(
        0.678, (0.0054, -0.00194, -0.000105), (0.499245, 0.497014, 0.498237, 0.505462), _HIP_DIAG
    ),
}

_THIGH_LEFT = Inertial(
    1.152, (-0.00374, -0.0223, -0.0327), (0.829533, 0.0847635, -0.0200632, 0.551623), _THIGH_DIAG
)
_THIGH_RIGHT = Inertial(
    1.152, (-0.00374, 0.0223, -0.0327), (0.551623, -0.0200632, 0.0847635, 0.829533), _THIGH_DIAG
)
_CALF_LEFT = Inertial(
    0.241352,
    (0.00629595, -0.000622121, -0.141417),
    (0.710672, 0.00154099, -0.00450087, 0.703508),
    _CALF_DIAG,
)
_CALF_RIGHT = Inertial(
    0.241352,
    (0.00629595, 0.000622121, -0.141417),
    (0.703508, -0.00450087, 0.00154099, 0.710672),
    _CALF_DIAG,
)
THIGH_INERTIAL = {"FL": _THIGH_LEFT, "RL": _THIGH_LEFT, "FR": _THIGH_RIGHT, "RR": _THIGH_RIGHT}
CALF_INERTIAL = {"FL": _CALF_LEFT, "RL": _CALF_LEFT, "FR": _CALF_RIGHT, "RR": _CALF_RIGHT}


def _leg_signs(leg: str) -> tuple[float, float]:
    """(x sign, y sign) of a leg: front +x, left +y."""
    return (1.0 if leg[0] == "F" else -1.0, 1.0 if leg[1] == "L" else -1.0)


def hip_pos(leg: str) -> tuple[float, float, float]:
    """Hip body origin in the base frame [m]."""
    sx, sy = _leg_signs(leg)
    return (sx * 0.1934, sy * 0.0465, 0.0)


def thigh_pos(leg: str) -> tuple[float, float, float]:
    """Thigh body origin in the hip frame [m]."""
    return (0.0, _leg_signs(leg)[1] * 0.0955, 0.0)


CALF_POS = (0.0, 0.0, -THIGH_LENGTH)
"""Calf body origin in the thigh frame [m]."""


def _quat_about(axis: str, degrees: float) -> tuple[float, float, float, float]:
    half = math.radians(degrees) / 2.0
    c, s = math.cos(half), math.sin(half)
    return {"x": (c, s, 0.0, 0.0), "y": (c, 0.0, s, 0.0), "z": (c, 0.0, 0.0, s)}[axis]


CALF_TILT_DEG = -12.0
"""Tilt of the upper calf cylinder about y (facts, section 3)."""


# ----------------------------------------------------------------------------- contact presets
@dataclass(frozen=True)
class GeomContact:
    """Contact parameters of a group of the robot's geoms. ``None`` keeps MuJoCo's default."""

    condim: int
    friction: tuple[float, float, float]
    priority: int = 0
    margin: float = 0.0
    solimp: tuple[float, ...] | None = None
    solref: tuple[float, float] | None = None


@dataclass(frozen=True)
class ContactPreset:
    """Solver and contact settings, selectable by name (``cheap``, ``menagerie``)."""

    name: str
    cone: str
    """``pyramidal`` or ``elliptic``."""
    impratio: float
    solver: str
    """``newton``, ``cg`` or ``pgs``."""
    iterations: int
    ls_iterations: int
    tolerance: float
    foot: GeomContact
    """The four foot spheres. Priority 1: their friction/condim/solimp win over the terrain's."""
    body: GeomContact
    """Every other collision geom of the robot."""

    @staticmethod
    def from_dict(name: str, data: Mapping[str, Any]) -> ContactPreset:
        """Build a preset from a YAML mapping (the layout of ``config/sim.yaml``)."""

        def floats(v: Any) -> Any:
            return None if v is None else tuple(float(x) for x in v)

        def geom(d: Mapping[str, Any]) -> GeomContact:
            return GeomContact(
                condim=int(d["condim"]),
                friction=floats(d["friction"]),
                priority=int(d.get("priority", 0)),
                margin=float(d.get("margin", 0.0)),
                solimp=floats(d.get("solimp")),
                solref=floats(d.get("solref")),
            )

        known = {"cone", "impratio", "solver", "iterations", "ls_iterations", "tolerance"}
        known |= {"foot", "body"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"contact preset {name!r}: unknown keys {sorted(unknown)}")
        return ContactPreset(
            name=name,
            cone=str(data["cone"]),
            impratio=float(data["impratio"]),
            solver=str(data.get("solver", "newton")),
            iterations=int(data["iterations"]),
            ls_iterations=int(data["ls_iterations"]),
            tolerance=float(data.get("tolerance", 1e-8)),
            foot=geom(data["foot"]),
            body=geom(data["body"]),
        )


_FOOT_FRICTION = (0.8, 0.02, 0.01)
_BODY_FRICTION = (0.6, 0.005, 0.0001)

CONTACT_PRESETS: dict[str, ContactPreset] = {
    # Training: what the facts measured at about 49k steps/s on a plane.
    "cheap": ContactPreset(
        name="cheap",
        cone="pyramidal",
        impratio=1.0,
        solver="newton",
        iterations=10,
        ls_iterations=5,
        tolerance=1e-8,
        foot=GeomContact(condim=3, friction=_FOOT_FRICTION, priority=1),
        body=GeomContact(condim=3, friction=_BODY_FRICTION),
    ),
    # Sim-to-sim validation: Menagerie's go2.xml (elliptic cone, impratio 100, soft condim-6 feet,
    # margin 0.001) with MuJoCo's default solver settings, which Menagerie keeps.
    "menagerie": ContactPreset(
        name="menagerie",
        cone="elliptic",
        impratio=100.0,
        solver="newton",
        iterations=100,
        ls_iterations=50,
        tolerance=1e-8,
        foot=GeomContact(
            condim=6, friction=_FOOT_FRICTION, priority=1, margin=0.001, solimp=(0.015, 1.0, 0.022)
        ),
        body=GeomContact(condim=1, friction=_BODY_FRICTION, margin=0.001),
    ),
}
"""The built-in presets; ``config/sim.yaml`` holds the same values (a test keeps them equal)."""

DEFAULT_TIMESTEP = 0.005

ACTUATIONS = ("motor", "pd")
"""``motor``: ctrl is the joint torque. ``pd``: ctrl is the joint position target of a PD servo."""
DEPLOY_KP = 40.0
DEPLOY_KD = 0.5
"""The paper's PD gains (Section IV-A), the default of the ``pd`` actuation."""


def load_contact_presets(path: str | Path) -> dict[str, ContactPreset]:
    """Read the ``contact_presets`` mapping of a YAML file such as ``config/sim.yaml``."""
    data = yaml.safe_load(Path(path).read_text())
    return {name: ContactPreset.from_dict(name, d) for name, d in data["contact_presets"].items()}


def contact_preset(preset: str | ContactPreset) -> ContactPreset:
    """A built-in preset by name (or the preset itself)."""
    if isinstance(preset, ContactPreset):
        return preset
    try:
        return CONTACT_PRESETS[preset]
    except KeyError:
        raise ValueError(
            f"unknown contact preset {preset!r}; known: {sorted(CONTACT_PRESETS)}"
        ) from None


_CONES = {"pyramidal": mujoco.mjtCone.mjCONE_PYRAMIDAL, "elliptic": mujoco.mjtCone.mjCONE_ELLIPTIC}
_SOLVERS = {
    "newton": mujoco.mjtSolver.mjSOL_NEWTON,
    "cg": mujoco.mjtSolver.mjSOL_CG,
    "pgs": mujoco.mjtSolver.mjSOL_PGS,
}


def apply_options(
    spec: mujoco.MjSpec, preset: str | ContactPreset, timestep: float = DEFAULT_TIMESTEP
) -> None:
    """Set the global solver options of ``spec`` from a contact preset."""
    p = contact_preset(preset)
    spec.compiler.degree = False  # every angle here (joint ranges) is in radians
    spec.option.timestep = timestep
    spec.option.cone = _CONES[p.cone]
    spec.option.impratio = p.impratio
    spec.option.solver = _SOLVERS[p.solver]
    spec.option.iterations = p.iterations
    spec.option.ls_iterations = p.ls_iterations
    spec.option.tolerance = p.tolerance


# ----------------------------------------------------------------------------- the builder
_BOX = mujoco.mjtGeom.mjGEOM_BOX
_CYLINDER = mujoco.mjtGeom.mjGEOM_CYLINDER
_SPHERE = mujoco.mjtGeom.mjGEOM_SPHERE
_HINGE = mujoco.mjtJoint.mjJNT_HINGE

ROBOT_RGBA = (0.25, 0.25, 0.28, 1.0)
FOOT_RGBA = (0.05, 0.05, 0.05, 1.0)


def _contact(geom: mujoco.MjsGeom, c: GeomContact) -> None:
    geom.condim = c.condim
    geom.friction = list(c.friction)
    geom.priority = c.priority
    geom.margin = c.margin
    if c.solimp is not None:
        geom.solimp = [*c.solimp, *(0.5, 2.0)[len(c.solimp) - 3 :]]
    if c.solref is not None:
        geom.solref = list(c.solref)


def _body(
    parent: mujoco.MjsBody, name: str, pos: Sequence[float], inertial: Inertial
) -> mujoco.MjsBody:
    return parent.add_body(
        name=name,
        pos=list(pos),
        mass=inertial.mass,
        ipos=list(inertial.com),
        iquat=list(inertial.quat),
        inertia=list(inertial.diag),
        explicitinertial=True,
    )


def add_go2(
    spec: mujoco.MjSpec,
    preset: str | ContactPreset = "cheap",
    prefix: str = "",
    pos: Sequence[float] = (0.0, 0.0, BASE_SPAWN_HEIGHT),
    quat: Sequence[float] = (1.0, 0.0, 0.0, 0.0),
    actuation: str = "motor",
    kp: float = DEPLOY_KP,
    kd: float = DEPLOY_KD,
) -> mujoco.MjsBody:
    """Add one Go2 (bodies, joints, geoms, sites, actuators, sensors) to ``spec``; return its base.

    ``prefix`` goes in front of every name, so several robots can share a model (training uses
    one robot per model and many ``MjData``; the prefix is for later compositions). The global
    solver options are not touched: see :func:`apply_options`. ``actuation`` is ``motor``
    (torque, the default) or ``pd`` (position servos with gains ``kp``, ``kd``).
    """
    p = contact_preset(preset)
    if actuation not in ACTUATIONS:
        raise ValueError(f"unknown actuation {actuation!r}; known: {ACTUATIONS}")
    unit = 180.0 / math.pi if spec.compiler.degree else 1.0  # joint ranges follow the compiler
    base = _body(spec.worldbody, f"{prefix}base", pos, BASE_INERTIAL)
    base.quat = list(quat)
    base.add_freejoint(name=f"{prefix}base_free")
    for kw in (
        dict(type=_BOX, size=[0.1881, 0.04675, 0.057]),
        dict(type=_CYLINDER, size=[0.05, 0.045, 0], pos=[0.285, 0, 0.01]),
        dict(type=_SPHERE, size=[0.047, 0, 0], pos=[0.293, 0, -0.06]),
    ):
        _contact(base.add_geom(rgba=list(ROBOT_RGBA), **kw), p.body)
    base.add_site(name=f"{prefix}imu", pos=list(IMU_POS), size=[0.01, 0, 0])

    torque = dict(zip(go2.JOINT_NAMES, go2.TORQUE_LIMIT, strict=True))
    lower = dict(zip(go2.JOINT_NAMES, go2.JOINT_LOWER, strict=True))
    upper = dict(zip(go2.JOINT_NAMES, go2.JOINT_UPPER, strict=True))

    def joint(body: mujoco.MjsBody, name: str, axis: Sequence[float]) -> None:
        body.add_joint(
            name=f"{prefix}{name}",
            type=_HINGE,
            axis=list(axis),
            range=[float(lower[name]) * unit, float(upper[name]) * unit],
            limited=mujoco.mjtLimited.mjLIMITED_TRUE,
            damping=JOINT_DAMPING,
            armature=JOINT_ARMATURE,
            frictionloss=JOINT_FRICTIONLOSS,
        )

    for leg in DECLARATION_LEGS:
        sy = _leg_signs(leg)[1]
        rear = leg[0] == "R"
        hip = _body(base, f"{prefix}{leg}_hip", hip_pos(leg), HIP_INERTIAL[leg])
        joint(hip, f"{leg}_hip_joint", (1, 0, 0))
        _contact(
            hip.add_geom(
                type=_CYLINDER,
                size=[0.046, 0.02, 0],
                pos=[0, sy * 0.08, 0],
                quat=list(_quat_about("x", 90.0)),
                rgba=list(ROBOT_RGBA),
            ),
            p.body,
        )
        thigh = _body(hip, f"{prefix}{leg}_thigh", thigh_pos(leg), THIGH_INERTIAL[leg])
        joint(thigh, f"{leg}_thigh_joint", (0, 1, 0))
        _contact(
            thigh.add_geom(
                type=_BOX,
                size=[0.1065, 0.01225, 0.017],
                pos=[0, 0, -0.1065],
                quat=list(_quat_about("y", 90.0)),
                rgba=list(ROBOT_RGBA),
            ),
            p.body,
        )
        calf = _body(thigh, f"{prefix}{leg}_calf", CALF_POS, CALF_INERTIAL[leg])
        joint(calf, f"{leg}_calf_joint", (0, 1, 0))
        _contact(
            calf.add_geom(
                type=_CYLINDER,
                size=[0.013 if rear else 0.012, 0.06, 0],
                pos=[0.01 if rear else 0.008, 0, -0.06],
                quat=list(_quat_about("y", CALF_TILT_DEG)),
                rgba=list(ROBOT_RGBA),
            ),
            p.body,
        )
        _contact(
            calf.add_geom(
                type=_CYLINDER,
                size=[0.011, 0.0325, 0],
                pos=[0.02, 0, -0.148],
                rgba=list(ROBOT_RGBA),
            ),
            p.body,
        )
        foot = calf.add_geom(
            name=f"{prefix}{leg}_foot",
            type=_SPHERE,
            size=[FOOT_RADIUS, 0, 0],
            pos=list(FOOT_POS),
            rgba=list(FOOT_RGBA),
        )
        _contact(foot, p.foot)
        calf.add_site(
            name=f"{prefix}{leg}_foot",
            pos=list(FOOT_POS),
            size=[TOUCH_SITE_RADIUS, 0, 0],
            rgba=[0.9, 0.2, 0.2, 0.0],
        )

    for leg in DECLARATION_LEGS:
        for kind in go2.JOINT_KINDS:
            jname = f"{leg}_{kind}_joint"
            limit = float(torque[jname])
            act = spec.add_actuator(
                name=f"{prefix}{leg}_{kind}",
                trntype=mujoco.mjtTrn.mjTRN_JOINT,
                target=f"{prefix}{jname}",
                gear=[1, 0, 0, 0, 0, 0],
            )
            if actuation == "motor":
                act.ctrlrange = [-limit, limit]
                act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
            else:  # force = kp ctrl - kp q - kd dq, clipped to the torque limit
                act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
                act.gainprm[0] = kp
                act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
                act.biasprm[:3] = [0.0, -kp, -kd]
                act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
                act.forcerange = [-limit, limit]
                act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE

    site = mujoco.mjtObj.mjOBJ_SITE
    for name, stype in (
        ("imu_quat", mujoco.mjtSensor.mjSENS_FRAMEQUAT),
        ("imu_gyro", mujoco.mjtSensor.mjSENS_GYRO),
        ("imu_acc", mujoco.mjtSensor.mjSENS_ACCELEROMETER),
        ("imu_linvel", mujoco.mjtSensor.mjSENS_VELOCIMETER),
    ):
        spec.add_sensor(name=f"{prefix}{name}", type=stype, objtype=site, objname=f"{prefix}imu")
    for leg in DECLARATION_LEGS:
        spec.add_sensor(
            name=f"{prefix}{leg}_foot_touch",
            type=mujoco.mjtSensor.mjSENS_TOUCH,
            objtype=site,
            objname=f"{prefix}{leg}_foot",
        )
    return base


def go2_spec(
    preset: str | ContactPreset = "cheap",
    timestep: float = DEFAULT_TIMESTEP,
    actuation: str = "motor",
) -> mujoco.MjSpec:
    """A spec holding one Go2 (no ground) with the preset's solver options."""
    spec = mujoco.MjSpec()
    spec.modelname = "go2"
    apply_options(spec, preset, timestep)
    add_go2(spec, preset, actuation=actuation)
    return spec


# ----------------------------------------------------------------------------- the index map
def _sdk_leg_kind(name: str) -> tuple[str, str]:
    leg, kind, _ = name.split("_")
    return leg, kind


@dataclass(frozen=True)
class Go2Indices:
    """Where one Go2's quantities live in a compiled model, every joint array in SDK order.

    Built by name, so it is right whatever the declaration order. For arrays of many ``MjData``
    (``mujoco.rollout``) use the address arrays directly: ``qpos[..., idx.qpos]`` is the joint
    positions in SDK order, ``ctrl[..., idx.ctrl] = tau_sdk`` applies SDK-ordered torques
    (joint targets with the ``pd`` actuation).
    """

    prefix: str
    base_body: int
    base_qpos: int
    """Address of the free joint in ``qpos`` (3 position + 4 quaternion w,x,y,z)."""
    base_qvel: int
    """Address of the free joint in ``qvel`` (3 linear in world + 3 angular in the base frame)."""
    joint_ids: np.ndarray
    qpos: np.ndarray
    qvel: np.ndarray
    ctrl: np.ndarray
    """Actuator index per SDK joint."""
    torque_limit: np.ndarray
    """The motors' torque limits, SDK order [N m] (``ctrlrange``, or ``forcerange`` for ``pd``)."""
    actuation: str
    """``motor`` (ctrl = torque) or ``pd`` (ctrl = joint position target)."""
    hip_bodies: np.ndarray
    calf_bodies: np.ndarray
    """Body per SDK leg (FR, FL, RR, RL); the foot geoms sit on the calves."""
    foot_geoms: np.ndarray
    """Foot sphere geom per SDK leg."""
    foot_touch: np.ndarray
    """``sensordata`` address of each foot's touch sensor, SDK leg order."""
    imu_quat: slice
    imu_gyro: slice
    imu_acc: slice
    imu_linvel: slice
    sdk_to_model: np.ndarray = field(repr=False)
    """For each SDK joint, its position in the model's declaration order ([3,4,5,0,1,2,...])."""

    @staticmethod
    def from_model(model: mujoco.MjModel, prefix: str = "") -> Go2Indices:
        """Look every quantity up by name in ``model``."""

        def oid(objtype: mujoco.mjtObj, name: str) -> int:
            i = mujoco.mj_name2id(model, objtype, f"{prefix}{name}")
            if i < 0:
                raise KeyError(f"{objtype.name} {prefix}{name!s} not in the model")
            return int(i)

        joint_ids = np.array([oid(mujoco.mjtObj.mjOBJ_JOINT, n) for n in go2.JOINT_NAMES])
        ctrl = []
        for jid in joint_ids:
            found = [
                a
                for a in range(model.nu)
                if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT
                and model.actuator_trnid[a, 0] == jid
            ]
            if len(found) != 1:
                raise KeyError(f"joint {model.joint(jid).name} has {len(found)} actuators")
            ctrl.append(found[0])
        ctrl_arr = np.array(ctrl)
        servo = model.actuator_biastype[ctrl_arr] == mujoco.mjtBias.mjBIAS_AFFINE
        if servo.any() and not servo.all():
            raise ValueError("the Go2's actuators mix motors and PD servos")
        actuation = "pd" if servo.all() else "motor"
        limits = model.actuator_forcerange if actuation == "pd" else model.actuator_ctrlrange
        free = oid(mujoco.mjtObj.mjOBJ_JOINT, "base_free")
        legs = [_sdk_leg_kind(n)[0] for n in go2.JOINT_NAMES[::3]]

        def sensor(name: str) -> slice:
            s = oid(mujoco.mjtObj.mjOBJ_SENSOR, name)
            adr = int(model.sensor_adr[s])
            return slice(adr, adr + int(model.sensor_dim[s]))

        own_joints = sorted(joint_ids)
        return Go2Indices(
            prefix=prefix,
            base_body=oid(mujoco.mjtObj.mjOBJ_BODY, "base"),
            base_qpos=int(model.jnt_qposadr[free]),
            base_qvel=int(model.jnt_dofadr[free]),
            joint_ids=joint_ids,
            qpos=model.jnt_qposadr[joint_ids].astype(np.int64),
            qvel=model.jnt_dofadr[joint_ids].astype(np.int64),
            ctrl=ctrl_arr,
            torque_limit=limits[ctrl_arr, 1].copy(),
            actuation=actuation,
            hip_bodies=np.array([oid(mujoco.mjtObj.mjOBJ_BODY, f"{leg}_hip") for leg in legs]),
            calf_bodies=np.array([oid(mujoco.mjtObj.mjOBJ_BODY, f"{leg}_calf") for leg in legs]),
            foot_geoms=np.array([oid(mujoco.mjtObj.mjOBJ_GEOM, f"{leg}_foot") for leg in legs]),
            foot_touch=np.array([sensor(f"{leg}_foot_touch").start for leg in legs]),
            imu_quat=sensor("imu_quat"),
            imu_gyro=sensor("imu_gyro"),
            imu_acc=sensor("imu_acc"),
            imu_linvel=sensor("imu_linvel"),
            sdk_to_model=np.array([own_joints.index(j) for j in joint_ids]),
        )

    # -- reading and writing one MjData ---------------------------------------------------
    def joint_pos(self, data: mujoco.MjData) -> np.ndarray:
        """Joint positions [rad], SDK order."""
        return data.qpos[self.qpos].copy()

    def joint_vel(self, data: mujoco.MjData) -> np.ndarray:
        """Joint velocities [rad/s], SDK order."""
        return data.qvel[self.qvel].copy()

    def joint_torque(self, data: mujoco.MjData) -> np.ndarray:
        """Actuator torques applied in the last step (after clipping) [N m], SDK order."""
        return data.actuator_force[self.ctrl].copy()

    def set_torque(self, data: mujoco.MjData, tau: np.ndarray) -> None:
        """Command motor torques [N m] given in SDK order (MuJoCo clips them to the limits)."""
        if self.actuation != "motor":
            raise RuntimeError("set_torque needs the motor actuation; this model has PD servos")
        data.ctrl[self.ctrl] = tau

    def set_target(self, data: mujoco.MjData, q_target: np.ndarray) -> None:
        """Command joint position targets [rad] in SDK order (``pd`` actuation)."""
        if self.actuation != "pd":
            raise RuntimeError("set_target needs the pd actuation; this model has torque motors")
        data.ctrl[self.ctrl] = q_target

    def base_pos(self, data: mujoco.MjData) -> np.ndarray:
        """Base origin in the world [m]."""
        return data.qpos[self.base_qpos : self.base_qpos + 3].copy()

    def base_quat(self, data: mujoco.MjData) -> np.ndarray:
        """Base orientation, w, x, y, z (from ``qpos``)."""
        return data.qpos[self.base_qpos + 3 : self.base_qpos + 7].copy()

    def imu(self, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """IMU readings: quaternion w,x,y,z, gyro [rad/s], accelerometer [m/s^2] (base frame)."""
        s = data.sensordata
        return s[self.imu_quat].copy(), s[self.imu_gyro].copy(), s[self.imu_acc].copy()

    def foot_forces(self, data: mujoco.MjData) -> np.ndarray:
        """Normal contact force on each foot [N], SDK leg order FR, FL, RR, RL."""
        return data.sensordata[self.foot_touch].copy()

    def set_pose(
        self,
        data: mujoco.MjData,
        joint_pos: np.ndarray,
        base_pos: Sequence[float],
        base_quat: Sequence[float] = (1.0, 0.0, 0.0, 0.0),
    ) -> None:
        """Place the robot: base pose and SDK-ordered joint positions, all velocities zero."""
        a = self.base_qpos
        data.qpos[a : a + 3] = base_pos
        data.qpos[a + 3 : a + 7] = base_quat
        data.qpos[self.qpos] = joint_pos
        data.qvel[self.base_qvel : self.base_qvel + 6] = 0.0
        data.qvel[self.qvel] = 0.0


def standing_height(
    model: mujoco.MjModel,
    idx: Go2Indices,
    joint_pos: np.ndarray = go2.DEFAULT_STANDING_POSE,
) -> float:
    """Base height [m] above flat ground at which the lowest foot of the pose just touches it.

    ``joint_pos`` in SDK order; the base is level. Computed by forward kinematics.
    """
    data = mujoco.MjData(model)
    idx.set_pose(data, joint_pos, (0.0, 0.0, 0.0))
    mujoco.mj_kinematics(model, data)
    lowest = float(np.min(data.geom_xpos[idx.foot_geoms, 2]))
    return -lowest + float(np.max(model.geom_size[idx.foot_geoms, 0]))
