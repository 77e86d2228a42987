"""ROS 2 name rules, checked before anything is created with a name (no rclpy here).

A namespace is empty or tokens joined by ``/`` (an optional leading ``/``), each token letters,
digits and underscores, not starting with a digit: rcl's own rule, which otherwise fails late, at
node start (``InvalidTopicNameException``) or after a recorder has already opened its bag.
"""

from __future__ import annotations

import re

_NAMESPACE = re.compile(r"/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")


def check_namespace(namespace: str) -> str:
    """``namespace`` if ROS 2 accepts it, else ``ValueError`` saying why."""
    if not isinstance(namespace, str):
        raise ValueError(f"namespace must be a string, got {namespace!r}")
    if namespace == "" or _NAMESPACE.fullmatch(namespace):
        return namespace
    raise ValueError(
        f"invalid ROS namespace {namespace!r}: tokens of letters, digits and '_' joined by '/', "
        "none starting with a digit"
    )


def check_topic(topic: str) -> str:
    """``topic`` (relative or absolute, no ``~`` or substitutions) if ROS 2 accepts it, else
    ``ValueError`` saying why."""
    if not isinstance(topic, str) or topic in ("", "/") or not _NAMESPACE.fullmatch(topic):
        raise ValueError(
            f"invalid ROS topic name {topic!r}: tokens of letters, digits and '_' joined by '/', "
            "none starting with a digit"
        )
    return topic
