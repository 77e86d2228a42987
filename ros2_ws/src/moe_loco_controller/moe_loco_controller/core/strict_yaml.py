"""YAML as the controller reads it: safe, and strict about a repeated key.

YAML says the last of two equal keys wins, which silently drops the first (a typo'd copy of a
section, say); here it is an error naming the key and its line.
"""

from __future__ import annotations

from typing import Any

import yaml


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's when built
    """YAML's safe loader, refusing a mapping that repeats a key (YAML says the last one wins,
    which silently drops the first)."""


def _mapping_without_duplicates(loader: Any, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # an unhashable key: the mapping constructor reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


def load_strict_yaml(text: str) -> Any:
    """The document in ``text``; ``ValueError`` saying what is wrong (syntax, a repeated key,
    nesting too deep)."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader (libyaml's when built)
    except yaml.YAMLError as e:
        raise ValueError(f"not valid YAML: {e}") from None
    except RecursionError:
        raise ValueError("not valid YAML: nested too deeply") from None
