"""Turning configuration problems into messages a technician can act on.

Every problem becomes a :class:`ConfigIssue` naming its path (``devices[1].registers[0].type``),
what is wrong, and where it is in the YAML file when that is known. YAML syntax errors give
``file:line:column``. Pydantic's error locations and messages are rewritten here, in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from misto.edge.errors import ConfigError

Loc = tuple[int | str, ...]
ROOT = "(top level)"


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One configuration problem. ``line``/``column`` are 1-based positions in the YAML file."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def render(self, source: str | None = None) -> str:
        """``file:line:column: path: message`` (compiler style), or ``path: message`` without a position."""
        if self.line is None:
            return str(self)
        return f"{source or 'line'}:{self.line}:{self.column}: {self}"


class ConfigProblem(ValueError):
    """Raised by validators to report problems below the validated object.

    Pydantic places a validator's error at the object it validates; each ``(subpath, message)``
    here is reported at that object's path extended by ``subpath`` instead, so a check across
    fields can still name the exact field (``registers[2].address``).
    """

    def __init__(self, problems: Iterable[tuple[Loc, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{format_loc(loc)}: {msg}" for loc, msg in self.problems))

    @classmethod
    def at(cls, subpath: Loc, message: str) -> ConfigProblem:
        return cls([(subpath, message)])


def format_loc(loc: Sequence[int | str]) -> str:
    """``("devices", 1, "registers", 0, "type")`` -> ``devices[1].registers[0].type``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or ROOT


_Render = Callable[[Mapping[str, Any], object], str]
_MESSAGES: dict[str, _Render] = {
    "missing": lambda ctx, given: "is required",
    "extra_forbidden": lambda ctx, given: "unknown key (check the spelling; see the sample configuration)",
    "literal_error": lambda ctx, given: f"must be one of {ctx.get('expected', '?')}, not {given!r}",
    "enum": lambda ctx, given: f"must be one of {ctx.get('expected', '?')}, not {given!r}",
    "int_type": lambda ctx, given: f"must be a whole number, not {given!r}",
    "int_parsing": lambda ctx, given: f"must be a whole number, not {given!r}",
    "int_from_float": lambda ctx, given: f"must be a whole number, not {given!r}",
    "float_type": lambda ctx, given: f"must be a number, not {given!r}",
    "float_parsing": lambda ctx, given: f"must be a number, not {given!r}",
    "finite_number": lambda ctx, given: f"must be a finite number, not {given!r}",
    "string_type": lambda ctx, given: f"must be a string, not {given!r}",
    "bool_type": lambda ctx, given: f"must be true or false, not {given!r}",
    "bool_parsing": lambda ctx, given: f"must be true or false, not {given!r}",
    "model_type": lambda ctx, given: f"must be a mapping of keys to values, not {given!r}",
    "model_attributes_type": lambda ctx, given: f"must be a mapping of keys to values, not {given!r}",
    "dict_type": lambda ctx, given: f"must be a mapping of keys to values, not {given!r}",
    "list_type": lambda ctx, given: f"must be a list, not {given!r}",
    "tuple_type": lambda ctx, given: f"must be a list, not {given!r}",
    "greater_than": lambda ctx, given: f"must be greater than {ctx.get('gt')}, not {given!r}",
    "greater_than_equal": lambda ctx, given: f"must be at least {ctx.get('ge')}, not {given!r}",
    "less_than": lambda ctx, given: f"must be less than {ctx.get('lt')}, not {given!r}",
    "less_than_equal": lambda ctx, given: f"must be at most {ctx.get('le')}, not {given!r}",
    "string_pattern_mismatch": lambda ctx, given: f"{given!r} does not match the pattern {ctx.get('pattern')}",
    "string_too_short": lambda ctx, given: (
        "must not be empty" if ctx.get("min_length") == 1 else f"must have at least {ctx.get('min_length')} characters"
    ),
    "string_too_long": lambda ctx, given: f"must have at most {ctx.get('max_length')} characters",
    "union_tag_invalid": lambda ctx, given: (
        f"unknown {str(ctx.get('discriminator', 'driver')).strip(chr(39))} {ctx.get('tag')!r}; "
        f"must be one of {ctx.get('expected_tags')}"
    ),
    "union_tag_not_found": lambda ctx, given: "is required",
}


def _message(error: Mapping[str, Any]) -> str:
    """A technician's message for one pydantic error (pydantic's own text for the rare kinds)."""
    render = _MESSAGES.get(error["type"])
    if render is not None:
        return render(error.get("ctx") or {}, error.get("input"))
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


def issues_from_validation_error(
    exc: ValidationError, locate: Locator | None = None, *, union_tags: frozenset[str] = frozenset()
) -> list[ConfigIssue]:
    """Every error of ``exc`` as a :class:`ConfigIssue`, with file positions when ``locate`` is given.

    ``union_tags`` are the tags of tagged unions (driver names): pydantic puts them in error
    locations (``devices.0.modbus_tcp.host``); a technician's path leaves them out.
    """
    issues: list[ConfigIssue] = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and part in union_tags))
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc += (str((error.get("ctx") or {}).get("discriminator", "driver")).strip("'"),)
        cause = (error.get("ctx") or {}).get("error")
        items = [(loc + sub, msg) for sub, msg in cause.problems] if isinstance(cause, ConfigProblem) else []
        if not items:
            items = [(loc, _message(error))]
        for full_loc, msg in items:
            line, column = locate(full_loc) if locate else (None, None)
            issues.append(ConfigIssue(format_loc(full_loc), msg, line, column))
    # In file order, as a technician reads the file (issues without a position keep their place first).
    return sorted(issues, key=lambda i: (i.line or 0, i.column or 0))


class Locator:
    """Finds the YAML position of a config path (or of its nearest existing parent)."""

    def __init__(self, root: Node | None) -> None:
        self._root = root

    def __call__(self, loc: Loc) -> tuple[int | None, int | None]:
        node = self._root
        if node is None:
            return None, None
        for part in loc:
            child = _child(node, part)
            if child is None:
                break
            node = child
        mark = node.start_mark
        return mark.line + 1, mark.column + 1


def _child(node: Node, part: int | str) -> Node | None:
    if isinstance(node, MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == part:
                return value  # type: ignore[no-any-return]
    if isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]
    return None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                first = seen[key].start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first defined on line {first.line + 1})", key_node.start_mark
                )
            if isinstance(key, str):
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


@dataclass(frozen=True, slots=True)
class YamlDocument:
    data: Any
    locate: Locator


def parse_yaml(text: str, *, source: str) -> YamlDocument:
    """Parse one YAML document; syntax errors raise :class:`ConfigError` with ``file:line:column``."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ConfigError([ConfigIssue("", f"invalid YAML: {problem}", line, column)], source=source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue("", f"invalid YAML: {exc}")], source=source) from None
    finally:
        loader.dispose()
    return YamlDocument(data, Locator(node))


def read_yaml_file(path: Path) -> YamlDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(ROOT, f"cannot read {path}: {exc}")], source=str(path)) from None
    return parse_yaml(text, source=str(path))
