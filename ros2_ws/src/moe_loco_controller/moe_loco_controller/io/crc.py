"""The Go2's message CRC, fast.

Unitree's CRC is CRC-32/MPEG-2 (poly 0x04C11DB7, init 0xFFFFFFFF, no reflection, no final xor)
over the message packed little-endian in 32-bit words, each word fed most significant bit
first, excluding the trailing crc word (LowCmd_ packs to 812 bytes, LowState_ to 1180). Feeding a
word MSB first is feeding its big-endian bytes, and CRC-32/MPEG-2 of a byte string equals the
bit-reversed complement of zlib's (reflected) CRC-32 of the bit-reversed bytes. So: pack,
byte-swap each word, reverse the bits of each byte, ``zlib.crc32``, reverse the 32 bits.
About 10 us per message against the SDK's pure-Python 0.9 ms; checked against the SDK's own
code on random messages in ``test/test_crc.py``.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np

# The wire layouts, 4-byte aligned, little-endian, as the C++ SDK lays the structs out.
# The Python SDK packs LowState_'s uint8 temperatures/NTCs and uint16 fan_frequency as *signed*
# (b, h): same bytes for small values, but struct.error for a temperature >= 128 or a fan
# frequency >= 32768. We pack them with their IDL types (B, H), as the robot does.
LOWCMD_FORMAT = "<4B4IH2x" + "B3x5f3I" * 20 + "4B" + "55Bx2I"
LOWSTATE_FORMAT = "<4B4IH2x" + "13fB3x" + "B3x7fB3x3I" * 20 + "4BiH4B15H" + "8hI41B3xf2B2x2f4H2I"
_LOWCMD = struct.Struct(LOWCMD_FORMAT)
_LOWSTATE = struct.Struct(LOWSTATE_FORMAT)
assert _LOWCMD.size == 812 and _LOWSTATE.size == 1180

_BITREV8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc32_core(packed: bytes) -> int:
    """Unitree's ``crc32_core`` over ``packed`` minus its last (crc) word."""
    n_words = len(packed) // 4 - 1
    be = np.frombuffer(packed, dtype="<u4", count=n_words).byteswap().tobytes()
    r = zlib.crc32(be.translate(_BITREV8)) ^ 0xFFFFFFFF
    return int(f"{r:032b}"[::-1], 2)


def pack_lowcmd(cmd: Any) -> bytes:
    """A LowCmd_ packed as the CRC sees it."""
    d: list[Any] = [
        *cmd.head,
        cmd.level_flag,
        cmd.frame_reserve,
        *cmd.sn,
        *cmd.version,
        cmd.bandwidth,
    ]
    for m in cmd.motor_cmd:
        d += (m.mode, m.q, m.dq, m.tau, m.kp, m.kd, *m.reserve)
    d += (cmd.bms_cmd.off, *cmd.bms_cmd.reserve)
    d += (*cmd.wireless_remote, *cmd.led, *cmd.fan, cmd.gpio, cmd.reserve, cmd.crc)
    return _LOWCMD.pack(*d)


def pack_lowstate(st: Any) -> bytes:
    """A LowState_ packed as the CRC sees it."""
    imu = st.imu_state
    d: list[Any] = [*st.head, st.level_flag, st.frame_reserve, *st.sn, *st.version, st.bandwidth]
    d += (*imu.quaternion, *imu.gyroscope, *imu.accelerometer, *imu.rpy, imu.temperature)
    for m in st.motor_state:
        d += (m.mode, m.q, m.dq, m.ddq, m.tau_est, m.q_raw, m.dq_raw, m.ddq_raw)
        d += (m.temperature, m.lost, *m.reserve)
    b = st.bms_state
    d += (b.version_high, b.version_low, b.status, b.soc, b.current, b.cycle)
    d += (*b.bq_ntc, *b.mcu_ntc, *b.cell_vol)
    d += (*st.foot_force, *st.foot_force_est, st.tick, *st.wireless_remote, st.bit_flag)
    d += (st.adc_reel, st.temperature_ntc1, st.temperature_ntc2, st.power_v, st.power_a)
    d += (*st.fan_frequency, st.reserve, st.crc)
    return _LOWSTATE.pack(*d)


def lowcmd_crc(cmd: Any) -> int:
    return crc32_core(pack_lowcmd(cmd))


def lowstate_crc(st: Any) -> int:
    return crc32_core(pack_lowstate(st))
