"""Turning GJSON path text into nodes, splitting it exactly where Go gjson v1.18 splits it.

This module is as lenient as Go: it accepts any text. Which texts modelplane refuses is decided before,
by `gjson_syntax`. Every sub-path (the rest after a `.` or `|`, a query's left-hand side, a multipath
member) is compiled once and shared, so evaluating a path never re-reads its text.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from modelplane.graph.gjson_glob import compile_glob
from modelplane.graph.gjson_modifiers import MODIFIERS
from modelplane.graph.gjson_nodes import (
    ArrayStep,
    Chain,
    ChainGet,
    CountStep,
    EachStep,
    GetNode,
    IndexStep,
    LinesGet,
    LiteralGet,
    ModifierGet,
    MultipathGet,
    NothingStep,
    ObjectStep,
    PlainGet,
    QueryStep,
)
from modelplane.graph.gjson_query import Comparison
from modelplane.graph.gjson_values import go_parse, go_unescape

_GO_INT_LIMIT = 1 << 63  # Go converts the uint64 index to int; larger ones wrap negative


class Compiler:
    """Compiles path texts, sharing the nodes of texts seen before."""

    def __init__(self) -> None:
        self._gets: dict[str, GetNode] = {}
        self._chains: dict[str, Chain] = {}

    def get(self, path: str) -> GetNode:
        node = self._gets.get(path)
        if node is None:
            node = self._gets[path] = self._compile_get(path)
        return node

    def chain(self, path: str) -> Chain:
        chain = self._chains.get(path)
        if chain is None:
            chain = self._chains[path] = Chain(self._object_step(path), self._array_step(path))
        return chain

    # Get level: Go's Get().

    def _compile_get(self, path: str) -> GetNode:
        if len(path) > 1:
            node: GetNode | None = None
            if path[0] == "@":
                node = self._modifier(path)
            elif path[0] == "!":
                node = self._literal(path)
            if node is None and path[0] in "[{":
                node, path = self._multipath(path)
            if node is not None:
                return node
        if path.startswith(".."):
            return LinesGet(self.chain(path[2:]))
        chain = self.chain(path)
        steps = _plain_steps(chain)
        return ChainGet(chain) if steps is None else PlainGet(steps)

    def _then(self, rest: str) -> GetNode | None:
        """The path after a modifier, literal or multipath: used only after a `.` or `|`."""
        if rest and rest[0] in ".|":
            return self.get(rest[1:])
        return None

    def _modifier(self, path: str) -> GetNode | None:
        end = _first_of(path, ":|.", 1)
        factory = MODIFIERS.get(path[1:end])
        if factory is None:
            return None  # not a modifier: Go reads it as a key such as "@type"
        rest = path[end + 1 :] if path[end : end + 1] == ":" else path[end:]
        arg = ""
        if path[end : end + 1] == ":" and rest:
            if rest[0] in '{["':
                arg = squash(rest)
            else:
                arg = _simple_modifier_arg(rest)
            rest = rest[len(arg) :]
        return ModifierGet(factory(arg, self.get), self._then(rest))

    def _literal(self, path: str) -> GetNode | None:
        text = path[1:]
        if text[0] in '{["+-0123456789':
            literal_text = parse_squash(text)
            rest = text[len(literal_text) :]
        else:
            end = _first_of(path, "|.", 1)
            literal_text, rest = path[1:end], path[end:]
            if literal_text.lower() not in ("true", "false", "null", "nan", "inf"):
                return None  # not a literal: Go reads it as a key
        # Go's lenient parse: "!True" is a literal that selects nothing.
        return LiteralGet(go_parse(literal_text), self._then(rest))

    def _multipath(self, path: str) -> tuple[GetNode | None, str]:
        """The multipath node, or None and what Go goes on reading: the text after it ("" if unclosed)."""
        parsed = parse_sub_selectors(path)
        if parsed is None:
            return None, ""
        selectors, rest = parsed
        if rest and rest[0] not in ".|":
            return None, rest
        keys = None if path[0] == "[" else [_multipath_key(name, sub) for name, sub in selectors]
        paths = [self.get(sub) for _, sub in selectors]
        return MultipathGet(keys, paths, self._then(rest)), rest

    # Component level: Go's parseObjectPath() and parseArrayPath().

    def _object_step(self, path: str) -> ObjectStep:
        key: list[str] = []
        wild = False
        i = 0
        while i < len(path):
            char = path[i]
            if char == "|":
                return self._key_step(key, wild, None, path[i + 1 :])
            if char == ".":
                rest = path[i + 1 :]
                if rest and self._dot_pipes(rest):
                    return self._key_step(key, wild, None, rest)
                return self._key_step(key, wild, rest, None)
            if char == "\\":
                i += 1
                if i < len(path):
                    key.append(path[i])
                i += 1
                continue
            if char in "*?":
                wild = True
            key.append(char)
            i += 1
        return self._key_step(key, wild, None, None)

    def _key_step(self, key: list[str], wild: bool, more: str | None, pipe: str | None) -> ObjectStep:
        text = "".join(key)
        return ObjectStep(
            text,
            compile_glob(text) if wild else None,
            None if more is None else self.chain(more),
            None if pipe is None else self.get(pipe),
        )

    def _dot_pipes(self, rest: str) -> bool:
        """Go's isDotPiperChar: after a `.`, a modifier or multipath acts as if after a `|`."""
        if rest[0] == "@":
            return rest[1 : _first_of(rest, ".|:", 1)] in MODIFIERS
        return rest[0] in "[{"

    def _array_step(self, path: str) -> ArrayStep:
        counting = False  # Go's arrch: a '#' was seen
        query: _Query | None = None
        i = 0
        while i < len(path):
            char = path[i]
            if char == "|":
                return self._index_or_hash_step(path[:i], counting, query, None, path[i + 1 :])
            if char == ".":
                rest = path[i + 1 :]
                if not counting and rest and self._dot_pipes(rest):
                    return self._index_or_hash_step(path[:i], counting, query, None, rest)
                return self._index_or_hash_step(path[:i], counting, query, rest, None)
            if char == "#":
                counting = True
                if i == 0 and len(path) > 1 and path[1] in "[(":
                    query = parse_query(path)
                    if query is None:
                        query = _Query("", "", "", False, False)
                        break  # Go gives up on a query it cannot read, keeping the whole text
                    i = query.end - 1
                    if query.end < len(path) and path[query.end] == "#":
                        query.all = True
            i += 1
        return self._index_or_hash_step(path, counting, query, None, None)

    def _index_or_hash_step(
        self, part: str, counting: bool, query: _Query | None, more: str | None, pipe: str | None
    ) -> ArrayStep:
        pipe_node = None if pipe is None else self.get(pipe)
        if query is not None:
            return self._query_step(query, more, pipe_node)
        if part == "#" and more is not None:
            each, each_pipe = _split_pipe_node(self, more)
            return EachStep(each, each_pipe)
        if counting:
            return CountStep(None, pipe_node) if part == "#" else NothingStep(None, pipe_node)
        index = _parse_uint(part)
        return IndexStep(
            -1 if index is None or index >= _GO_INT_LIMIT else index,
            None if more is None else self.chain(more),
            pipe_node,
        )

    def _query_step(self, query: _Query, more: str | None, pipe: GetNode | None) -> QueryStep:
        then = then_pipe = None
        if more is not None:
            then, then_pipe = _split_pipe_node(self, more)
        return QueryStep(
            self.get(query.path),
            query.path != "",
            Comparison(query.op, query.value),
            query.all,
            then,
            then_pipe,
            pipe,
        )


def _plain_steps(chain: Chain | None) -> list[tuple[str, int]] | None:
    """The (key, index) steps of a chain that has no wildcard, `#`, query or pipe; else None."""
    steps = []
    while chain is not None:
        key, index = chain.obj, chain.arr
        plain = key.glob is None and key.pipe is None and type(index) is IndexStep and index.pipe is None
        if not plain or index.more is not key.more:
            return None
        steps.append((key.key, index.index))
        chain = key.more
    return steps


def _split_pipe_node(compiler: Compiler, path: str) -> tuple[GetNode, GetNode | None]:
    split = split_possible_pipe(path)
    if split is None:
        return compiler.get(path), None
    left, right = split
    return compiler.get(left), compiler.get(right)


def _first_of(text: str, chars: str, start: int) -> int:
    for i in range(start, len(text)):
        if text[i] in chars:
            return i
    return len(text)


def _parse_uint(text: str) -> int | None:
    if not text or not text.isascii() or not text.isdigit():
        return None
    return int(text) % (1 << 64)  # Go's uint64 arithmetic wraps


def _simple_modifier_arg(rest: str) -> str:
    """A modifier argument that is not JSON runs to the next `|`, skipping bracketed groups."""
    i = 0
    while i < len(rest) and rest[i] != "|":
        if rest[i] in '{["(':
            i += len(squash(rest[i:])) - 1
        i += 1
    return rest[:i]


@dataclass(slots=True)
class _Query:
    path: str
    op: str
    value: str
    all: bool
    ok: bool
    end: int = 0  # index just after the closing bracket


def parse_query(path: str) -> _Query | None:
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
        return _Query(_trim(path[2:i]), "", "", False, True, i + 1)
    lhs, value = _trim(path[2:op_start]), _trim(path[op_start:i])
    op, value = split_operator(value)
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
        if escaped_string:
            value = go_unescape(value)
    return _Query(lhs, op, value, False, True, i + 1)


def split_operator(text: str) -> tuple[str, str]:
    """Split `op value` as Go does: `==` is `=`; an unknown operator reads as no operator."""
    if len(text) == 1:
        return text, ""
    if text[:2] in ("!=", "!%", "<=", ">="):
        return text[:2], _trim(text[2:])
    if text[:2] == "==":
        return "=", _trim(text[2:])
    if text[0] in "<>=%":
        return text[0], _trim(text[1:])
    return "", _trim(text)


def _trim(text: str) -> str:
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


def _multipath_key(name: str, path: str) -> str:
    if name:
        if name[0] == '"':
            try:
                decoded = orjson.loads(name)
            except orjson.JSONDecodeError:
                decoded = None
            if isinstance(decoded, str):
                return decoded
        return name
    last = _name_of_last(path)
    return last if _is_simple_name(last) else "_"


def _name_of_last(path: str) -> str:
    for i in range(len(path) - 1, -1, -1):
        if path[i] in "|." and not (i > 0 and path[i - 1] == "\\"):
            return path[i + 1 :]
    return path


def _is_simple_name(component: str) -> bool:
    return not any(char < " " or char in "[]{}()#|!" for char in component)
