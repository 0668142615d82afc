"""Go gjson's scanners of path text: where a query, a multipath, a modifier argument or a literal ends.

Ports of the functions of the same names in tidwall/gjson v1.18 (parseQuery, squash, parseSquash,
splitPossiblePipe, parseSubSelectors), keeping their quirks, since they decide how Go splits a path.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelplane.graph.gjson.values import go_unescape


def first_of(text: str, chars: str, start: int) -> int:
    for i in range(start, len(text)):
        if text[i] in chars:
            return i
    return len(text)


def parse_uint(text: str) -> int | None:
    if not text or not text.isascii() or not text.isdigit():
        return None
    return int(text) % (1 << 64)  # Go's uint64 arithmetic wraps


def simple_modifier_arg(rest: str) -> str:
    """A modifier argument that is not JSON runs to the next `|`, skipping bracketed groups."""
    i = 0
    while i < len(rest) and rest[i] != "|":
        if rest[i] in '{["(':
            i += len(squash(rest[i:])) - 1
        i += 1
    return rest[:i]


@dataclass(slots=True)
class Query:
    path: str
    op: str
    value: str
    all: bool
    ok: bool
    end: int = 0  # index just after the closing bracket


def parse_query(path: str) -> Query | None:
    """Go's parseQuery for `#(...)` / `#[...]` at the start of path; None when the brackets never close."""
    i, op_start, depth, escaped_string = 2, 0, 1, False
    while i < len(path):
        char = path[i]
        if depth == 1 and op_start == 0 and char in "!=<>%":
            op_start = i
            i += 1
            continue
        if char == "\\":
            i += 1
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
            if depth == 0:
                break
        elif char == '"':
            i += 1
            while i < len(path):
                if path[i] == "\\":
                    escaped_string = True
                    i += 1
                elif path[i] == '"':
                    break
                i += 1
        i += 1
    if depth > 0:
        return None
    if op_start == 0:
        return Query(trim(path[2:i]), "", "", False, True, i + 1)
    lhs, value = trim(path[2:op_start]), trim(path[op_start:i])
    op, value = split_operator(value)
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
        if escaped_string:
            value = go_unescape(value)
    return Query(lhs, op, value, False, True, i + 1)


def split_operator(text: str) -> tuple[str, str]:
    """Split `op value` as Go does: `==` is `=`; an unknown operator reads as no operator."""
    if len(text) == 1:
        return text, ""
    if text[:2] in ("!=", "!%", "<=", ">="):
        return text[:2], trim(text[2:])
    if text[:2] == "==":
        return "=", trim(text[2:])
    if text[0] in "<>=%":
        return text[0], trim(text[1:])
    return "", trim(text)


def trim(text: str) -> str:
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def squash(text: str) -> str:
    """Go's squash: the leading JSON value of text (a string, or a balanced {...}, [...] or (...))."""
    i, depth = (0, 0) if text[0] == '"' else (1, 1)
    while i < len(text):
        char = text[i]
        if char == '"':
            i += 1
            while i < len(text):
                if text[i] == "\\":
                    i += 1
                elif text[i] == '"':
                    break
                i += 1
            if depth == 0:
                return text[: i + 1]
        elif char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
            if depth == 0:
                return text[: i + 1]
        i += 1
    return text


def parse_squash(text: str) -> str:
    """Go's parseSquash: like squash, but the first character is taken as an opening bracket.

    So a string or number literal runs to the end of the text, or to a bracket that "closes" it.
    """
    i, depth = 1, 1
    while i < len(text):
        char = text[i]
        if char == '"':
            i += 1
            while i < len(text):
                if text[i] == "\\":
                    i += 1
                elif text[i] == '"':
                    break
                i += 1
        elif char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
            if depth == 0:
                return text[: i + 1]
        i += 1
    return text


def split_possible_pipe(path: str) -> tuple[str, str] | None:
    """Go's splitPossiblePipe: the first `|` that is not inside a `.#(...)` query."""
    if "|" not in path:
        return None
    if path[0] == "{":
        squashed = squash(path[1:])
        if len(squashed) < len(path) - 1:
            squashed = path[: len(squashed) + 1]
            remain = path[len(squashed) :]
            if remain[0] == "|":
                return squashed, remain[1:]
        return None
    i = 0
    while i < len(path):
        char = path[i]
        if char == "\\":
            i += 1
        elif char == ".":
            if i == len(path) - 1:
                return None
            if path[i + 1] == "#":
                i += 2
                if i == len(path):
                    return None
                if path[i] in "[(":
                    i = _skip_bracket(path, i)
        elif char == "|":
            return path[:i], path[i + 1 :]
        i += 1
    return None


def _skip_bracket(path: str, i: int) -> int:
    """From an opening bracket, the index of its closing bracket of the same kind (or the end)."""
    opening = path[i]
    closing = "]" if opening == "[" else ")"
    depth = 1
    i += 1
    while i < len(path):
        char = path[i]
        if char == "\\":
            i += 1
        elif char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return i
        elif char == '"':
            i += 1
            while i < len(path):
                if path[i] == "\\":
                    i += 1
                elif path[i] == '"':
                    break
                i += 1
        i += 1
    return i


def parse_sub_selectors(path: str) -> tuple[list[tuple[str, str]], str] | None:
    """Go's parseSubSelectors: the `name:path` members of a multipath, and the text after it."""
    selectors: list[tuple[str, str]] = []
    modifier = colon = 0
    depth, start, i = 1, 1, 1

    def push() -> None:
        if colon == 0:
            selectors.append(("", path[start:i]))
        else:
            selectors.append((path[start:colon], path[colon + 1 : i]))

    while i < len(path):
        char = path[i]
        if char == "\\":
            i += 1
        elif char == "@":
            if modifier == 0 and path[i - 1] in ".|":
                modifier = i
        elif char == ":":
            if modifier == 0 and colon == 0 and depth == 1:
                colon = i
        elif char == ",":
            if depth == 1:
                push()
                colon = modifier = 0
                start = i + 1
        elif char == '"':
            i += 1
            while i < len(path):
                if path[i] == "\\":
                    i += 1
                elif path[i] == '"':
                    break
                i += 1
        elif char in "[({":
            depth += 1
        elif char in "])}":
            depth -= 1
            if depth == 0:
                push()
                return selectors, path[i + 1 :]
        i += 1
    return None
