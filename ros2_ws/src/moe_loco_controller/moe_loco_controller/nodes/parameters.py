"""The nodes' ROS parameters: declared from the validated configuration, read back through the
same validation, and changed at run time only where :data:`~..core.parameters.RUNTIME_PARAMETERS`
allows (the rules are in :mod:`moe_loco_controller.core.parameters`)."""

from __future__ import annotations

from collections.abc import Callable

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from moe_loco_controller.core.config import Config, ConfigError
from moe_loco_controller.core.parameters import (
    RUNTIME_PARAMETERS,
    check_runtime_change,
    config_from_parameters,
    node_parameters,
    unknown_overrides,
)


def declare_config(node: Node, cfg: Config, kind: str) -> Config:
    """Declare ``kind``'s parameters (``controller`` or ``joystick``) on ``node`` with ``cfg``'s
    values as defaults; what ``--params-file`` / ``-p`` gave overrides them. Returns the config
    they make, validated; :class:`ConfigError` naming the parameter otherwise (also for a given
    parameter that is not ours: a typo must not pass silently)."""
    given = getattr(node, "_parameter_overrides", {})  # rclpy: what the node was given
    unknown = unknown_overrides(set(given))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown parameter (see config/controller.yaml)")
    runtime = RUNTIME_PARAMETERS[kind]
    values = {}
    for name, default in node_parameters(cfg, kind).items():
        what = runtime.get(name, "read-only; config/controller.yaml says what it is")
        descriptor = ParameterDescriptor(
            description=what,
            read_only=name not in runtime,
            dynamic_typing=default is None,  # a null (not set) stand gain: the policy's
        )
        try:
            values[name] = node.declare_parameter(name, default, descriptor).value
        except (InvalidParameterTypeException, InvalidParameterValueException) as e:
            raise ConfigError(f"{name}: {e}") from None
    return config_from_parameters(cfg, values)


def watch_runtime_parameters(
    node: Node, kind: str, current: Callable[[], Config], apply: Callable[[Config], None]
) -> None:
    """Accept a run-time change only if the config it makes is valid (else refuse it with the
    reason, naming the parameter, and change nothing); then hand that config to ``apply``.
    rclpy itself refuses changes of read-only parameters and of a parameter's type."""

    def changes(params: list[Parameter]) -> dict[str, object]:
        return {p.name: p.value for p in params}

    def on_set(params: list[Parameter]) -> SetParametersResult:
        try:
            check_runtime_change(current(), kind, changes(params))
        except ConfigError as e:
            return SetParametersResult(successful=False, reason=str(e))
        return SetParametersResult(successful=True)

    def post_set(params: list[Parameter]) -> None:
        new = check_runtime_change(current(), kind, changes(params))
        apply(new)
        node.get_logger().info(
            "parameters changed: " + ", ".join(f"{p.name}={p.value!r}" for p in params)
        )

    node.add_on_set_parameters_callback(on_set)
    node.add_post_set_parameters_callback(post_set)
