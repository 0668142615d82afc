"""Turning GJSON path text into nodes, splitting it exactly where Go gjson v1.18 splits it.

This module is as lenient as Go: it accepts any text. Which texts modelplane refuses is decided before,
by `syntax`. Every sub-path (the rest after a `.` or `|`, a query's left-hand side, a multipath
member) is compiled once and shared, so evaluating a path never re-reads its text.
"""

from __future__ import annotations

import orjson

from modelplane.graph.gjson.glob import compile_glob
from modelplane.graph.gjson.modifiers import MODIFIERS
from modelplane.graph.gjson.nodes import (
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
from modelplane.graph.gjson.query import Comparison
from modelplane.graph.gjson.scan import (
    Query,
    first_of,
    parse_query,
    parse_squash,
    parse_sub_selectors,
    parse_uint,
    simple_modifier_arg,
    split_possible_pipe,
    squash,
)
from modelplane.graph.gjson.values import go_parse

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
        return ChainGet(chain) if steps is None else PlainGet(steps, chain)

    def _then(self, rest: str) -> GetNode | None:
        """The path after a modifier, literal or multipath: used only after a `.` or `|`."""
        if rest and rest[0] in ".|":
            return self.get(rest[1:])
        return None

    def _modifier(self, path: str) -> GetNode | None:
        end = first_of(path, ":|.", 1)
        factory = MODIFIERS.get(path[1:end])
        if factory is None:
            return None  # not a modifier: Go reads it as a key such as "@type"
        rest = path[end + 1 :] if path[end : end + 1] == ":" else path[end:]
        arg = ""
        if path[end : end + 1] == ":" and rest:
            if rest[0] in '{["':
                arg = squash(rest)
            else:
                arg = simple_modifier_arg(rest)
            rest = rest[len(arg) :]
        return ModifierGet(factory(arg, self.get), self._then(rest))

    def _literal(self, path: str) -> GetNode | None:
        text = path[1:]
        if text[0] in '{["+-0123456789':
            literal_text = parse_squash(text)
            rest = text[len(literal_text) :]
        else:
            end = first_of(path, "|.", 1)
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
            return rest[1 : first_of(rest, ".|:", 1)] in MODIFIERS
        return rest[0] in "[{"

    def _array_step(self, path: str) -> ArrayStep:
        counting = False  # Go's arrch: a '#' was seen
        query: Query | None = None
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
                        query = Query("", "", "", False, False)
                        break  # Go gives up on a query it cannot read, keeping the whole text
                    i = query.end - 1
                    if query.end < len(path) and path[query.end] == "#":
                        query.all = True
            i += 1
        return self._index_or_hash_step(path, counting, query, None, None)

    def _index_or_hash_step(
        self, part: str, counting: bool, query: Query | None, more: str | None, pipe: str | None
    ) -> ArrayStep:
        pipe_node = None if pipe is None else self.get(pipe)
        if query is not None:
            return self._query_step(query, more, pipe_node)
        if part == "#" and more is not None:
            each, each_pipe = _split_pipe_node(self, more)
            return EachStep(each, each_pipe)
        if counting:
            return CountStep(None, pipe_node) if part == "#" else NothingStep(None, pipe_node)
        index = parse_uint(part)
        return IndexStep(
            -1 if index is None or index >= _GO_INT_LIMIT else index,
            None if more is None else self.chain(more),
            pipe_node,
        )

    def _query_step(self, query: Query, more: str | None, pipe: GetNode | None) -> QueryStep:
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
