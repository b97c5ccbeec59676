"""YAML with line numbers: the grid's loader and dumper, node → line helpers, and :class:`Problems`,
which collects ``FILE:LINE: message`` errors so that a file's every problem is reported at once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from budget.errors import ConfigError

# YAML 1.1 (PyYAML) reads 1e9 and 5e-4 as strings; grids use YAML 1.2 floats.
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+))$""",
    re.X,
)


class Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e9``/``5e-4`` as floats."""


class Dumper(yaml.SafeDumper):
    """SafeDumper that quotes strings the loader would read as floats."""


for _cls in (Loader, Dumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


def parse_yaml(text: str, name: str) -> tuple[Any, Any]:
    """(data, node) of a single-document YAML text; ConfigError located by line on a syntax error."""
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{name}{line}: invalid YAML: {problem}") from None
    finally:
        loader.dispose()
    return data, node


def flow(d: Mapping[str, Any]) -> str:
    """``d`` as one line of YAML flow style (``{a: 1, b: x}``), readable back by :class:`Loader`."""
    return yaml.dump(dict(d), Dumper=Dumper, default_flow_style=True, sort_keys=False, width=1 << 30).strip()


def line_of(node: Any) -> int:
    return node.start_mark.line + 1


class Problems:
    """The problems of one file, each ``FILE:LINE: message`` (or ``FILE: message``), without repeats."""

    def __init__(self, name: str):
        self.name = name
        self.items: list[str] = []

    def add(self, line: int | None, msg: str) -> None:
        text = f"{self.name}:{line}: {msg}" if line else f"{self.name}: {msg}"
        if text not in self.items:
            self.items.append(text)

    def raise_any(self, *, in_file_order: bool = True) -> None:
        """Raise one ConfigError listing every problem (``.problems`` holds them), if there is any."""
        if not self.items:
            return
        errors = self.items
        if in_file_order:  # stable within a line
            errors = sorted(errors, key=self._line)
            message = f"{len(errors)} problems in grid: " + "; ".join(errors) if len(errors) > 1 else errors[0]
        else:
            message = "; ".join(errors)
        exc = ConfigError(message)
        exc.problems = errors  # type: ignore[attr-defined]
        raise exc

    def _line(self, error: str) -> int:
        rest = error[len(self.name) + 1 :] if error.startswith(self.name + ":") else ""
        head = rest.split(":", 1)[0]
        return int(head) if head.isdigit() else 0


def mapping_lines(node: Any, problems: Problems | None = None) -> dict[str, tuple[int, Any]]:
    """key -> (line of the key, value node) of a mapping node; reports duplicate keys to ``problems``."""
    out: dict[str, tuple[int, Any]] = {}
    if not isinstance(node, yaml.MappingNode):
        return out
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key in out and problems is not None:
            problems.add(line_of(key_node), f"duplicate key {key!r} (first on line {out[key][0]})")
        out[key] = (line_of(key_node), value_node)
    return out


def key_lines(node: Any, problems: Problems | None = None) -> dict[str, int]:
    """key -> line of the key, of a mapping node."""
    return {k: ln for k, (ln, _) in mapping_lines(node, problems).items()}


def sequence_lines(node: Any) -> list[tuple[int, Any]]:
    """(line, node) of each item of a sequence node."""
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [(line_of(item), item) for item in node.value]


__all__ = ["Dumper", "Loader", "Problems", "flow", "key_lines", "line_of", "mapping_lines", "parse_yaml",
           "sequence_lines"]  # fmt: skip
