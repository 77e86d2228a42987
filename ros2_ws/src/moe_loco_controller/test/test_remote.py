import numpy as np
import pytest

from moe_loco_controller.core.remote import key_pressed, pack_remote, parse_remote


def test_remote_roundtrip_and_layout():
    axes = np.array([0.25, -0.5, 0.75, -1.0, 0.5])  # lx, ly, rx, ry, L2
    data = pack_remote((1 << 8) | (1 << 2), axes)
    assert len(data) == 40
    # go2_facts: lx at byte 4, rx at 8, ry at 12, L2 at 16, ly at 20
    assert np.frombuffer(data[4:8], "<f4")[0] == 0.25
    assert np.frombuffer(data[20:24], "<f4")[0] == -0.5
    assert np.frombuffer(data[8:12], "<f4")[0] == 0.75
    keys, parsed = parse_remote(data)
    np.testing.assert_array_equal(parsed, axes)
    assert key_pressed(keys, "A") and key_pressed(keys, "start")
    assert not key_pressed(keys, "B")


def test_remote_errors():
    with pytest.raises(ValueError, match="40 bytes"):
        parse_remote(b"\x00" * 39)
    with pytest.raises(ValueError, match="unknown remote key 'Z'"):
        key_pressed(0, "Z")
