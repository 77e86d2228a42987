"""The Foxglove layout for our bags (config/foxglove_layout.json): every message path it plots is
a topic the recorder records and a field its message type has, and each "target vs measured"
plot pairs the same joint across the SDK order (joint_command) and the URDF order (joint_states)."""

import json
import re
from pathlib import Path

from moe_loco_controller.bag import RECORDED_TOPICS, topic_types
from moe_loco_controller.core import go2
from moe_loco_controller.nodes.recorder import msg_class

LAYOUT = Path(__file__).resolve().parents[1] / "config" / "foxglove_layout.json"


def paths(doc):
    for panel, cfg in doc["configById"].items():
        if panel.startswith("Plot!"):
            yield from (p["value"] for p in cfg["paths"])
        elif panel.startswith("RawMessages!"):
            yield cfg["topicPath"]


def resolve(path, topics):
    topic = max((t for t in topics if path.startswith(t + ".")), key=len)
    msg = msg_class(topics[topic])()
    value = msg
    for part in path[len(topic) + 1 :].split("."):
        m = re.fullmatch(r"([a-z_]+)(?:\[(\d+)\])?", part)
        assert m, path
        value = getattr(value, m.group(1))
        if m.group(2) is not None and len(value) > 0:  # fixed-size arrays can be checked
            value = value[int(m.group(2))]
    return topic


def test_every_plotted_path_is_a_recorded_topic_and_field():
    doc = json.loads(LAYOUT.read_text())
    topics = topic_types("moe_loco", RECORDED_TOPICS)
    used = {resolve(p, topics) for p in paths(doc)}
    assert {"/moe_loco/status", "/moe_loco/estimated_velocity", "/joint_states"} <= used

    def layout_ids(node):
        return (
            {node}
            if isinstance(node, str)
            else layout_ids(node["first"]) | layout_ids(node["second"])
        )

    assert layout_ids(doc["layout"]) == set(doc["configById"])


def test_target_vs_measured_plots_pair_the_same_joint():
    doc = json.loads(LAYOUT.read_text())
    pairs = 0
    for cfg in doc["configById"].values():
        values = [p["value"] for p in cfg.get("paths", [])]
        sdk = [int(re.search(r"q\[(\d+)\]", v).group(1)) for v in values if "joint_command" in v]
        urdf = [int(re.search(r"\[(\d+)\]", v).group(1)) for v in values if "joint_states" in v]
        if sdk and urdf:
            assert go2.JOINT_NAMES[sdk[0]] == go2.URDF_JOINT_NAMES[urdf[0]], cfg["title"]
            assert go2.JOINT_NAMES[sdk[0]].split("_")[0] in cfg["title"].replace(" ", "_")
            pairs += 1
    assert pairs == 2
