"""Fast CDR (de)serialisation of LowState_ and LowCmd_ with precompiled ``struct`` layouts.

CycloneDDS's Python IDL machinery (de)serialises a LowState_ in ~0.4 ms; at 500 Hz in a Python
controller that is a fifth of a core and GIL time the control loop waits for. Both messages are
flat structs of primitives and fixed arrays, so their CDR layout is a fixed ``struct`` format:
each primitive aligned to its own size, relative to the payload after the 4-byte encapsulation
header (no 8-byte types, so XCDR1 and XCDR2 agree). The field list below mirrors Unitree's IDL
(``unitree_go/msg/dds_``); ``test/test_cdr.py`` checks both directions against CycloneDDS's own
serialiser on random messages. The same field order packed in C layout is what the CRC covers,
so the CRC of a received frame comes from the unpacked values without building IDL objects.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from moe_loco_controller.io.crc import LOWCMD_FORMAT, LOWSTATE_FORMAT, crc32_core, pack_lowcmd

Fields = Sequence[tuple[str, int]]

_MOTOR_STATE: Fields = [("B", 1), ("f", 7), ("B", 1), ("I", 1), ("I", 2)]
LOWSTATE_FIELDS: Fields = [
    ("B", 2), ("B", 1), ("B", 1), ("I", 2), ("I", 2), ("H", 1),  # head .. bandwidth
    ("f", 4), ("f", 3), ("f", 3), ("f", 3), ("B", 1),  # imu_state
    *(_MOTOR_STATE * 20),  # motor_state[20]: mode, q..ddq_raw, temperature, lost, reserve
    ("B", 4), ("i", 1), ("H", 1), ("B", 2), ("B", 2), ("H", 15),  # bms_state
    ("h", 4), ("h", 4), ("I", 1), ("B", 40), ("B", 1), ("f", 1),  # feet, tick, remote, bit_flag
    ("B", 1), ("B", 1), ("f", 1), ("f", 1), ("H", 4), ("I", 1), ("I", 1),  # .. reserve, crc
]  # fmt: skip
_MOTOR_CMD: Fields = [("B", 1), ("f", 5), ("I", 3)]
LOWCMD_FIELDS: Fields = [
    ("B", 2), ("B", 1), ("B", 1), ("I", 2), ("I", 2), ("H", 1),
    *(_MOTOR_CMD * 20),  # motor_cmd[20]: mode, q, dq, tau, kp, kd, reserve[3]
    ("B", 1), ("B", 3),  # bms_cmd
    ("B", 40), ("B", 12), ("B", 2), ("B", 1), ("I", 1), ("I", 1),  # remote, led, fan, gpio, ..
]  # fmt: skip


def cdr_format(fields: Fields) -> str:
    """The little-endian ``struct`` format of ``fields`` in CDR layout (natural alignment)."""
    fmt, offset = "<", 0
    for code, count in fields:
        size = struct.calcsize("<" + code)
        pad = -offset % size
        if pad:
            fmt += f"{pad}x"
            offset += pad
        fmt += f"{count}{code}"
        offset += size * count
    return fmt


ENCAPSULATION_LE = b"\x00\x01\x00\x00"  # CDR, little-endian, no options
LOWSTATE_CDR = struct.Struct(cdr_format(LOWSTATE_FIELDS))
LOWCMD_CDR = struct.Struct(cdr_format(LOWCMD_FIELDS))
_LOWSTATE_C = struct.Struct(LOWSTATE_FORMAT)
_LOWCMD_C = struct.Struct(LOWCMD_FORMAT)
assert sum(c for _, c in LOWSTATE_FIELDS) == len(_LOWSTATE_C.unpack(bytes(_LOWSTATE_C.size)))
assert sum(c for _, c in LOWCMD_FIELDS) == len(_LOWCMD_C.unpack(bytes(_LOWCMD_C.size)))


# Indices into the flat LowState_ tuple.
_MOTOR0 = 2 + 1 + 1 + 2 + 2 + 1 + 13 + 1  # first motor's mode
_MOTOR_LEN = 1 + 7 + 1 + 1 + 2
LS_QUAT = 9
LS_GYRO = 13
LS_ACC = 16
LS_MOTOR_Q = [_MOTOR0 + i * _MOTOR_LEN + 1 for i in range(20)]
_BMS_END = _MOTOR0 + 20 * _MOTOR_LEN + 4 + 1 + 1 + 2 + 2 + 15
LS_FOOT_FORCE = _BMS_END
LS_TICK = _BMS_END + 8
LS_REMOTE = LS_TICK + 1
LS_CRC = len(_LOWSTATE_C.unpack(bytes(_LOWSTATE_C.size))) - 1


def decode_lowstate(data: bytes) -> tuple:
    """The flat value tuple of a serialised LowState_ (encapsulation header included)."""
    if len(data) < 4 + LOWSTATE_CDR.size:
        raise ValueError(
            f"LowState_ payload of {len(data)} bytes, expected {4 + LOWSTATE_CDR.size}"
        )
    if data[0] != 0 or data[1] not in (0x01, 0x07):  # CDR_LE or CDR2_LE
        raise ValueError(f"LowState_ payload is not little-endian CDR (header {data[:4].hex()})")
    return LOWSTATE_CDR.unpack_from(data, 4)


def lowstate_values_crc(values: Sequence) -> int:
    """Unitree's CRC of a LowState_ given as the flat value tuple."""
    return crc32_core(_LOWSTATE_C.pack(*values))


# Indices into the flat LowCmd_ list.
LC_MOTOR0 = 9
LC_MOTOR_LEN = 9  # mode, q, dq, tau, kp, kd, reserve[3]
LC_CRC = len(_LOWCMD_C.unpack(bytes(_LOWCMD_C.size))) - 1


def encode_lowcmd(values: list) -> bytes:
    """A serialised LowCmd_ (header included) from its flat value list, with its CRC set."""
    values[LC_CRC] = crc32_core(_LOWCMD_C.pack(*values))
    return ENCAPSULATION_LE + LOWCMD_CDR.pack(*values)


def lowcmd_values(cmd: object) -> list:
    """The flat value list of a LowCmd_ IDL object (to start a template from)."""
    return list(_LOWCMD_C.unpack(pack_lowcmd(cmd)))


# The other direction of each message, for the simulated robot (moe_loco_sim's bridge): it sends
# LowState_ and receives LowCmd_ at the robot's rates, so it needs the same fast paths.
def encode_lowstate(values: list, crc: bool = True) -> bytes:
    """A serialised LowState_ (header included) from its flat value list, with its CRC set
    (``crc=False``: the field is 0, as Unitree's MuJoCo simulator sends it)."""
    values[LS_CRC] = crc32_core(_LOWSTATE_C.pack(*values)) if crc else 0
    return ENCAPSULATION_LE + LOWSTATE_CDR.pack(*values)


def decode_lowcmd(data: bytes) -> tuple:
    """The flat value tuple of a serialised LowCmd_ (encapsulation header included)."""
    if len(data) < 4 + LOWCMD_CDR.size:
        raise ValueError(f"LowCmd_ payload of {len(data)} bytes, expected {4 + LOWCMD_CDR.size}")
    if data[0] != 0 or data[1] not in (0x01, 0x07):  # CDR_LE or CDR2_LE
        raise ValueError(f"LowCmd_ payload is not little-endian CDR (header {data[:4].hex()})")
    return LOWCMD_CDR.unpack_from(data, 4)


def lowcmd_values_crc(values: Sequence) -> int:
    """Unitree's CRC of a LowCmd_ given as the flat value tuple (to compare with its LC_CRC)."""
    return crc32_core(_LOWCMD_C.pack(*values))
