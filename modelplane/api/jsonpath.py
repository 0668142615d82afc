"""kubectl's JSONPath templates, for `modelplane get -o jsonpath=TEMPLATE` and `-o custom-columns=SPEC`.

A template is text with `{...}` actions, as kubectl takes it: `{.status.url}`,
`{.items[*].metadata.name}`, `{.status.conditions[?(@.type=="Ready")].status}`,
`{range .items[*]}{.metadata.name}{"\\t"}{.status.url}{"\\n"}{end}`. Paths take fields (`\\.` in a
name: `{.metadata.annotations.serving\\.kserve\\.io/deploymentMode}`, or `['a.b']`), `[N]`,
`[START:END]`, `[*]`, `..NAME` (every NAME below), and filters comparing `@.PATH` with a literal
(`==`, `!=`, `<`, `<=`, `>`, `>=`) or testing that it exists. As `kubectl get` does, a path that
reaches nothing prints nothing; several values are separated by spaces; maps and lists print as JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from modelplane.api.go_template.fmt import go_value_string


class TemplateError(ValueError):
    """A template kubectl would refuse too, said as kubectl says it."""


class ExecutionError(ValueError):
    """A path that kubectl's `-o jsonpath` fails on: an index or filter on what is not a list."""


@dataclass(frozen=True)
class _Step:
    kind: str  # field, index, slice, items ([*]), all (.*), filter, recursive, union
    value: Any = None


_FIELD = re.compile(r"\.((?:\\.|[^.\[\]\\\s])+)")
# A union, `[0,2]` or `['name','image']`: kubectl splits what is inside the brackets at its commas.
_UNION = re.compile(r"\[([^\[\]?]*,[^\[\]]*)\]")
_QUOTED_KEY = re.compile(r"""\[\s*(['"])(.*?)\1\s*\]""")
_SLICE = re.compile(r"\[\s*(-?\d*)\s*:\s*(-?\d*)\s*(?::\s*(-?\d*)\s*)?\]")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_ITEMS = re.compile(r"\[\s*\*\s*\]")
_ALL = re.compile(r"\.\*")
_FILTER = re.compile(
    r"\[\s*\?\(\s*@((?:\.\.?(?:\\.|[^.\s=!<>)\\])+)*)\s*(?:(==|!=|<=|>=|<|>)\s*(.*?))?\s*\)\s*\]"
)
_RECURSIVE = re.compile(r"\.\.")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def parse_path(path: str) -> list[_Step]:
    """The steps of one path (`.a.b[*]`, `$.a`, `@.a`); raises TemplateError where kubectl would."""
    text = path.strip()
    if text[:1] in ("$", "@"):
        text = text[1:]
    if text == ".":  # a field with no name: kubectl finds nothing
        return [_Step("field", "")]
    steps: list[_Step] = []
    position = 0
    while position < len(text):
        if match := _RECURSIVE.match(text, position):
            steps.append(_Step("recursive"))
            position = match.end() - 1  # the name after `..` is read as a field
            if position + 1 >= len(text) or text[position + 1] in ".[":
                position += 1
            continue
        for pattern, kind in (
            (_FILTER, "filter"),
            (_UNION, "union"),
            (_ITEMS, "items"),
            (_ALL, "all"),
            (_QUOTED_KEY, "key"),
            (_SLICE, "slice"),
            (_INDEX, "index"),
            (_FIELD, "field"),
        ):
            match = pattern.match(text, position)
            if match:
                steps.append(_step(kind, match))
                position = match.end()
                break
        else:
            if re.match(r"\[\s*\]", text[position:]):
                raise TemplateError(
                    "[] names no item (kubectl reads it as [0]): write [0] for the first, or [*] for every one"
                )
            raise TemplateError(f"unrecognized character in action: {text[position:]!r}")
    return steps


def _step(kind: str, match: re.Match) -> _Step:
    if kind == "field":
        return _Step("field", re.sub(r"\\(.)", r"\1", match.group(1)))
    if kind == "key":
        return _Step("field", match.group(2))
    if kind == "index":
        return _Step("index", int(match.group(1)))
    if kind == "slice":
        start, end, step = (int(part) if part else None for part in match.groups())
        return _Step("slice", (start, end, step))
    if kind == "union":
        parts = [parse_path(f"[{part.strip()}]") for part in match.group(1).split(",")]
        if any(len(part) != 1 or part[0].kind == "recursive" for part in parts):
            raise TemplateError(f"invalid array index {match.group(1)}")
        return _Step("union", [part[0] for part in parts])
    if kind == "filter":
        path, operator, literal = match.groups()
        wanted = _literal(literal) if operator else None
        return _Step("filter", (parse_path(path), operator, wanted))
    return _Step(kind)


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise TemplateError(f"unrecognized literal in filter: {text!r}") from None


def evaluate(steps: list[_Step], node: Any, *, strict: bool = False) -> list[Any]:
    """Every value the steps reach from `node`, in order. `strict`: an index, slice or filter on a
    value that is not a list raises ExecutionError, as `kubectl get -o jsonpath` fails (a missing
    field or a null is passed over in either case); else it reaches nothing, as printer columns do."""
    nodes = [node]
    for step in steps:
        # A union gives what its first part reaches from every node, then what its second does...
        parts = step.value if step.kind == "union" else [step]
        nodes = [found for part in parts for current in nodes for found in _apply(part, current, strict)]
    return nodes


def _apply(step: _Step, node: Any, strict: bool) -> list[Any]:
    if step.kind == "field":
        return [node[step.value]] if isinstance(node, dict) and step.value in node else []
    if step.kind == "all" or (step.kind == "items" and not strict):
        if isinstance(node, dict):
            return list(node.values())
        return list(node) if isinstance(node, list) else []
    if not isinstance(node, list) and step.kind != "recursive":
        if strict and node is not None:
            if step.kind == "filter":
                raise ExecutionError(f"{go_value_string(node)} is not array or slice and cannot be filtered")
            raise ExecutionError(f"{_JSON_GO_TYPES.get(type(node), 'interface {}')} is not array or slice")
        return []
    if step.kind == "items":
        return list(node)
    if step.kind == "index":
        if strict:
            return _kubectl_slice(node, step.value, step.value + 1, None, one=True)
        return [node[step.value]] if -len(node) <= step.value < len(node) else []
    if step.kind == "slice":
        start, end, every = step.value
        if strict:
            return _kubectl_slice(node, start, end, every, one=False)
        return node[start:end:every] if every is None or every > 0 else []
    if step.kind == "filter":
        path, operator, wanted = step.value
        matching = []
        for item in node:
            found = evaluate(path, item)
            if strict and operator and len(found) > 1:
                raise ExecutionError("can only compare one element at a time")
            if _matches(found, operator, wanted):
                matching.append(item)
        return matching
    return list(_descendants(node))


def _kubectl_slice(node: list, start: int | None, end: int | None, every: int | None, *, one: bool) -> list:
    """`[start:end:every]` (or one index, `[start]`) as kubectl's JSONPath takes it, bounds checked."""
    length = len(node)
    start = 0 if start is None else start + length if start < 0 else start
    if end is None:
        end = length
    elif end < 0 or (one and end == 0):  # [-1] is [-1:0], read as its last item
        end += length
    if start == end:
        return []
    if not 0 <= start < length:
        raise ExecutionError(f"array index out of bounds: index {start}, length {length}")
    if not 0 <= end <= length:
        raise ExecutionError(f"array index out of bounds: index {end - 1}, length {length}")
    if start > end:
        raise ExecutionError(f"starting index {start} is greater than ending index {end}")
    if every is not None and every <= 0:
        raise ExecutionError("step must be > 0")
    return node[start:end:every]


# The Go types kubectl's JSON objects hold.
_JSON_GO_TYPES = {
    dict: "map[string]interface {}",
    str: "string",
    int: "int64",
    float: "float64",
    bool: "bool",
}


def _matches(found: list[Any], operator: str | None, wanted: Any) -> bool:
    if operator is None:
        return bool(found)
    if not found:
        return False
    value = found[0]
    if operator == "==":
        return value == wanted
    if operator == "!=":
        return value != wanted
    try:
        return {"<": value < wanted, "<=": value <= wanted, ">": value > wanted, ">=": value >= wanted}[
            operator
        ]
    except TypeError:
        return False


def _descendants(node: Any):
    """The node and everything below it, depth first (what `..` searches)."""
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from _descendants(child)


# ---- templates ----


@dataclass(frozen=True)
class _Part:
    kind: str  # text, path, range, end
    text: str = ""
    steps: tuple[_Step, ...] = ()


def parse_template(template: str) -> list[_Part]:
    parts: list[_Part] = []
    position = 0
    depth = 0
    while position < len(template):
        start = template.find("{", position)
        if start < 0:
            parts.append(_Part("text", template[position:]))
            break
        if start > position:
            parts.append(_Part("text", template[position:start]))
        end = _action_end(template, start)
        action = template[start + 1 : end].strip()
        position = end + 1
        if action == "end":
            depth -= 1
            if depth < 0:
                raise TemplateError(f"error parsing jsonpath {template}, not in range")
            parts.append(_Part("end"))
        elif action.startswith("range ") or action.startswith("range\t"):
            depth += 1
            parts.append(_Part("range", steps=tuple(parse_path(action[len("range") :]))))
        elif action[:1] in ('"', "'") and action[-1:] == action[:1] and len(action) >= 2:
            parts.append(_Part("text", _unescape(action[1:-1])))
        elif action in ("true", "false") or _NUMBER.fullmatch(action):
            parts.append(_Part("text", action))
        else:
            try:
                parts.append(_Part("path", steps=tuple(parse_path(action))))
            except TemplateError as error:
                raise TemplateError(f"error parsing jsonpath {template}, {error}") from None
    if depth:
        raise TemplateError(f"error parsing jsonpath {template}, unclosed range")
    return parts


def _action_end(template: str, start: int) -> int:
    quote = None
    for position in range(start + 1, len(template)):
        char = template[position]
        if quote:
            if char == "\\":
                continue
            if char == quote and template[position - 1] != "\\":
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "}":
            return position
    raise TemplateError(f"error parsing jsonpath {template}, unclosed action")


def _unescape(text: str) -> str:
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape")


def render_template(parts: list[_Part], data: Any) -> str:
    output, _ = _render(parts, 0, data)
    return output


def _render(parts: list[_Part], start: int, data: Any) -> tuple[str, int]:
    """The output of parts[start:] up to their `{end}` (or the last), and where it stopped."""
    output: list[str] = []
    position = start
    while position < len(parts):
        part = parts[position]
        if part.kind == "end":
            return "".join(output), position
        if part.kind == "text":
            output.append(part.text)
        elif part.kind == "path":
            values = evaluate(list(part.steps), data, strict=True)
            output.append(" ".join(format_value(value) for value in values))
        else:  # range: the body once for each value, then past its end
            body_end = _body_end(parts, position + 1)
            for item in evaluate(list(part.steps), data, strict=True):
                output.append(_render(parts, position + 1, item)[0])
            position = body_end
        position += 1
    return "".join(output), position


def _body_end(parts: list[_Part], start: int) -> int:
    """Where the range whose body starts at `start` ends: its `{end}`, or past the last part."""
    depth = 0
    for position in range(start, len(parts)):
        if parts[position].kind == "range":
            depth += 1
        elif parts[position].kind == "end":
            if depth == 0:
                return position
            depth -= 1
    return len(parts)


def format_value(value: Any) -> str:
    """A value as kubectl prints it: text as is, maps and lists as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def custom_columns(spec: str) -> list[tuple[str, list[_Step]]]:
    """`NAME:.metadata.name,URL:.status.url` as (header, path) pairs."""
    columns = []
    for column in spec.split(","):
        header, colon, path = column.partition(":")
        if not colon or not header or not path:
            raise TemplateError(
                f'unexpected custom-columns spec: {column!r}, expected "header:json-path-expr"'
            )
        columns.append((header, parse_field_path(path)))
    return columns


def parse_field_path(path: str) -> list[_Step]:
    """A path as a custom column or `--sort-by` takes it: `.status.url`, `{.status.url}` or `status.url`."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    return parse_path(path if path.startswith((".", "$", "@", "[")) else "." + path)
