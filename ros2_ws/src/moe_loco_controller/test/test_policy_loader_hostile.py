"""Policy files that used to crash the loader with something other than PolicyFileError."""

import json

import pytest
from policy_factory import metadata

from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_controller.core.policy_metadata import PolicyFileError, PolicyMetadata
from moe_loco_controller.nodes import bringup


def good() -> dict:
    return metadata().to_dict()


def test_deeply_nested_json_is_refused():
    text = "[" * 1000 + "]" * 1000  # RecursionError inside json
    for doc in (text, json.dumps(good())[:-1] + ', "training": ' + text + "}"):
        with pytest.raises(PolicyFileError, match=r"nested too deeply|must be"):
            PolicyMetadata.from_json(doc)


@pytest.mark.parametrize("field", ["action_clip", "control_dt", "kp", "action_scale"])
def test_an_integer_beyond_float64_is_refused_naming_the_field(field):
    d = good()
    d[field] = 10**400  # json.dumps writes the digits; json.loads gives the int back
    with pytest.raises(PolicyFileError) as e:
        PolicyMetadata.from_json(json.dumps(d))
    assert e.value.field == field and "401 digits" in e.value.message


def test_a_huge_expert_count_is_refused_before_anything_is_allocated(make_policy):
    d = good()
    d["num_experts"] = 10**12  # was a 3.64 TiB MemoryError with symbolic graph dims
    with pytest.raises(PolicyFileError) as e:
        PolicyMetadata.from_dict(d)
    assert e.value.field == "num_experts" and "<= 256" in e.value.message
    d = good()
    d["recurrent"][0]["shape"] = [1, 100_000, 100_000]
    with pytest.raises(PolicyFileError) as e:
        PolicyMetadata.from_dict(d)
    assert e.value.field == "recurrent[0].shape"
    with pytest.raises(PolicyFileError, match="num_experts"):
        PolicyRuntime(make_policy(meta_changes={"num_experts": 10**12}))


def test_bringup_exits_2_with_the_field_named_not_a_traceback(make_policy, capsys):
    path = make_policy(meta_changes={"num_experts": 10**12})
    assert bringup.main(["--policy", str(path), "--nodes", "controller", "--duration", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "num_experts" in err and "Traceback" not in err
