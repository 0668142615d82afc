"""The compiled form of a GJSON path, and how it walks a parsed JSON document.

Two levels, as in Go gjson:
- a *get* node evaluates a whole path against one value (`Get(json, path)`): modifiers, literals,
  multipaths, or a chain of components; it returns the selected value or MISSING;
- a *chain* is a path of components (`a.b.0`). Go splits the same text differently when the current value
  is an object or an array, so a chain holds both readings: `obj` (a key) and `arr` (an index, `#`, a query).

A walk shares a `Context` between the components of one get: the value found so far, and the path after a
`|` that is applied to it at the end.
"""

from __future__ import annotations

from typing import Any

from modelplane.graph.gjson.document import DuplicateKeys
from modelplane.graph.gjson.glob import Glob
from modelplane.graph.gjson.modifiers import Modifier
from modelplane.graph.gjson.query import Comparison
from modelplane.graph.gjson.values import MISSING


class Context:
    """What the components of one get share: the value found so far, and the path after a `|`."""

    __slots__ = ("value", "pipe")

    def __init__(self) -> None:
        self.value: Any = MISSING
        self.pipe: GetNode | None = None

    def result(self) -> Any:
        if self.pipe is not None:
            return self.pipe.get(self.value)
        return self.value


class GetNode:
    """A whole path, evaluated against one value."""

    __slots__ = ()

    def get(self, value: Any) -> Any:
        raise NotImplementedError


class Chain:
    """The two readings of a component path: against an object, and against an array."""

    __slots__ = ("obj", "arr")

    def __init__(self, obj: ObjectStep, arr: ArrayStep) -> None:
        self.obj = obj
        self.arr = arr

    def walk(self, ctx: Context, value: Any) -> bool:
        if isinstance(value, dict):
            return self.obj.walk(ctx, value)
        if isinstance(value, list):
            return self.arr.walk(ctx, value)
        return False


class ChainGet(GetNode):
    """A chain of components with wildcards, `#`, queries or pipes, walked by Go's rules."""

    __slots__ = ("chain",)

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def get(self, value: Any) -> Any:
        ctx = Context()
        self.chain.walk(ctx, value)
        return ctx.result()


class PlainGet(GetNode):
    """A chain of plain keys and indexes, such as `predictions.0.label`: the common case, as direct lookups.

    Each step is a key (used when the value is an object) and an index (when it is an array; -1 if the
    component is not a number), which is what the two readings of such a chain come to.
    """

    __slots__ = ("steps", "chain")

    def __init__(self, steps: list[tuple[str, int]], chain: Chain) -> None:
        self.steps = steps
        self.chain = chain  # walked instead where a key is there twice

    def get(self, value: Any) -> Any:
        document = value
        for key, index in self.steps:
            if isinstance(value, dict):
                if type(value) is DuplicateKeys:
                    return ChainGet(self.chain).get(document)
                value = value.get(key, MISSING)
                if value is MISSING:
                    return MISSING
            elif isinstance(value, list) and 0 <= index < len(value):
                value = value[index]
            else:
                return MISSING
        return value


class LinesGet(GetNode):
    """`..path`: the document read as JSON Lines, i.e. as an array of its one value."""

    __slots__ = ("chain",)

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def get(self, value: Any) -> Any:
        ctx = Context()
        self.chain.arr.walk(ctx, [] if value is MISSING else [value])
        return ctx.result()


class ModifierGet(GetNode):
    """`@name:arg` then, after a `.` or `|`, the rest of the path."""

    __slots__ = ("modifier", "then")

    def __init__(self, modifier: Modifier, then: GetNode | None) -> None:
        self.modifier = modifier
        self.then = then

    def get(self, value: Any) -> Any:
        changed = self.modifier(value)
        return changed if self.then is None else self.then.get(changed)


class LiteralGet(GetNode):
    """`!true`, `!"text"`, `!{...}`: a constant, whatever the document."""

    __slots__ = ("literal", "then")

    def __init__(self, literal: Any, then: GetNode | None) -> None:
        self.literal = literal
        self.then = then

    def get(self, value: Any) -> Any:
        return self.literal if self.then is None else self.then.get(self.literal)


class MultipathGet(GetNode):
    """`[p1,p2]` builds an array, `{p1,"name":p2}` an object, of the paths that select something."""

    __slots__ = ("keys", "paths", "then")

    def __init__(self, keys: list[str] | None, paths: list[GetNode], then: GetNode | None) -> None:
        self.keys = keys  # None for an array
        self.paths = paths
        self.then = then

    def get(self, value: Any) -> Any:
        built: Any
        if self.keys is None:
            built = [found for path in self.paths if (found := path.get(value)) is not MISSING]
        else:
            built = {}
            for key, path in zip(self.keys, self.paths, strict=True):
                found = path.get(value)
                if found is not MISSING:
                    built.setdefault(key, found)  # Go writes duplicates; a lookup finds the first
        return built if self.then is None else self.then.get(built)


class Step:
    """One component of a chain, read against an object or against an array."""

    __slots__ = ("more", "pipe")

    def __init__(self, more: Chain | None, pipe: GetNode | None) -> None:
        self.more = more  # the components after a `.`
        self.pipe = pipe  # the path after a `|`, applied to the final value

    def walk(self, ctx: Context, container: Any) -> bool:
        """Look in the container; True when the search is over (Go's "hit")."""
        raise NotImplementedError

    def _descend(self, ctx: Context, member: Any) -> bool:
        if self.more is None:
            ctx.value = member
            return True
        return self.more.walk(ctx, member)


class ObjectStep(Step):
    """A key, maybe with wildcards; with wildcards, the first matching key whose rest succeeds wins."""

    __slots__ = ("key", "glob")

    def __init__(self, key: str, glob: Glob | None, more: Chain | None, pipe: GetNode | None) -> None:
        super().__init__(more, pipe)
        self.key = key
        self.glob = glob

    def walk(self, ctx: Context, container: dict[str, Any]) -> bool:
        if self.pipe is not None:
            ctx.pipe = self.pipe
        twice = type(container) is DuplicateKeys
        members = container.pairs if twice else container.items()
        if self.glob is None:
            if not twice:
                member = container.get(self.key, MISSING)
                return member is not MISSING and self._descend(ctx, member)
            # As Go: each member of that name in turn, until one has the rest of the path.
            return any(key == self.key and self._descend(ctx, member) for key, member in members)
        return any(self.glob.matches(key) and self._descend(ctx, member) for key, member in members)


class ArrayStep(Step):
    __slots__ = ()


class IndexStep(ArrayStep):
    __slots__ = ("index",)

    def __init__(self, index: int, more: Chain | None, pipe: GetNode | None) -> None:
        super().__init__(more, pipe)
        self.index = index  # -1 when the component is not an index

    def walk(self, ctx: Context, container: list[Any]) -> bool:
        if self.pipe is not None:
            ctx.pipe = self.pipe
        if 0 <= self.index < len(container):
            return self._descend(ctx, container[self.index])
        return False


class CountStep(ArrayStep):
    """`#`: the length of the array."""

    __slots__ = ()

    def walk(self, ctx: Context, container: list[Any]) -> bool:
        if self.pipe is not None:
            ctx.pipe = self.pipe
        ctx.value = len(container)
        return True


class NothingStep(ArrayStep):
    """A component that can never match in an array (e.g. a key name)."""

    __slots__ = ()

    def walk(self, ctx: Context, container: list[Any]) -> bool:
        if self.pipe is not None:
            ctx.pipe = self.pipe
        return False


class EachStep(ArrayStep):
    """`#.path`: the path applied to every element; the elements where it selects nothing are left out."""

    __slots__ = ("each",)

    def __init__(self, each: GetNode, pipe: GetNode | None) -> None:
        super().__init__(None, pipe)
        self.each = each

    def walk(self, ctx: Context, container: list[Any]) -> bool:
        if self.pipe is not None:
            ctx.pipe = self.pipe
        each = self.each
        ctx.value = [found for element in container if (found := each.get(element)) is not MISSING]
        return True


class QueryStep(ArrayStep):
    """`#(path op value)`: the first matching element; with a trailing `#`, all of them (maybe `[]`).

    `then` is the path after the query's `.`, applied to each matching element; `then_pipe` is the part
    of it after a `|`, applied to the result once something matched.
    """

    __slots__ = ("path", "has_path", "comparison", "all", "then", "then_pipe")

    def __init__(
        self,
        path: GetNode,
        has_path: bool,
        comparison: Comparison,
        all_matches: bool,
        then: GetNode | None,
        then_pipe: GetNode | None,
        pipe: GetNode | None,
    ) -> None:
        super().__init__(None, pipe)
        self.path = path
        self.has_path = has_path
        self.comparison = comparison
        self.all = all_matches
        self.then = then
        self.then_pipe = then_pipe

    def walk(self, ctx: Context, container: list[Any]) -> bool:
        if self.pipe is not None:
            ctx.pipe = self.pipe
        found: list[Any] = []
        for element in container:
            if isinstance(element, dict | list):
                selected = self.path.get(element)
            elif self.has_path:
                continue  # a path cannot select anything inside a string, number, bool or null
            else:
                selected = element
            if not self.comparison.test(selected):
                continue
            result = element
            if self.then is not None:
                if self.then_pipe is not None:
                    ctx.pipe = self.then_pipe
                result = self.then.get(element)
            if not self.all:
                ctx.value = result
                return True
            if result is not MISSING:
                found.append(result)
        if self.all and ctx.value is MISSING:
            ctx.value = found
        return False
