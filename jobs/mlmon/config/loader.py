"""Reading ``mlmon.yaml``: YAML with the line of every key, and duplicate keys rejected.

Plain PyYAML keeps the last of two equal keys without a word; here the second one
is an error naming the key and both lines. The line of each key path
(``("models", "churn", "drift", "alpha")`` -> 12) lets validation errors point at the line.
"""

from __future__ import annotations

from typing import Any

import yaml

from mlmon.config.values import ConfigError, KeyPath, key_text


class MarkedLoader(yaml.SafeLoader):
    """A SafeLoader that records the line (1-based) where each key path starts, in :attr:`lines`,
    and refuses duplicate keys in a mapping."""

    def __init__(self, stream: str, file: str = "<config>") -> None:
        super().__init__(stream)
        self.file = file
        self.lines: dict[KeyPath, int] = {}

    def load_marked(self) -> Any:
        """The document's value (None for an empty document); fills :attr:`lines`."""
        node = self.get_single_node()
        if node is None:
            return None
        self.lines[()] = node.start_mark.line + 1
        self._walk(node, (), set())
        return self.construct_document(node)

    def _walk(self, node: yaml.Node, path: KeyPath, active: set[int]) -> None:
        if id(node) in active:  # a recursive alias
            return
        active = active | {id(node)}
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key, line = str(key_node.value), key_node.start_mark.line + 1
                if key == "<<":  # a merge key: its mapping's keys belong to this one
                    self._walk(value_node, path, active)
                    continue
                if key in first:
                    raise ConfigError(f"{self.file}:{line}: {key_text((*path, key))}: duplicate key {key!r} "
                                      f"(first at line {first[key]}; YAML would keep only the last one)")
                first[key] = line
                self.lines.setdefault((*path, key), line)
                self._walk(value_node, (*path, key), active)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.lines.setdefault((*path, i), item.start_mark.line + 1)
                self._walk(item, (*path, i), active)


def read_yaml(text: str, file: str) -> tuple[Any, dict[KeyPath, int]]:
    """The parsed YAML and the line of each key path; ConfigError for invalid YAML or duplicate keys."""
    loader = MarkedLoader(text, file)
    try:
        return loader.load_marked(), loader.lines
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{file}:{mark.line + 1}" if mark is not None else file
        what = " ".join(str(p) for p in (err.context, err.problem) if p)
        raise ConfigError(f"{where}: not valid YAML: {what}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{file}: not valid YAML: {' '.join(str(err).split())}") from err
    finally:
        loader.dispose()
