"""GJSON paths, as KServe's InferenceGraph router evaluates step conditions.

KServe runs a step when `gjson.GetBytes(body, condition).Exists()`; this module gives the same answer as
Go's tidwall/gjson v1.18 on parsed JSON:

    path = compile_path('[@this].#(decision_picker=="ERROR")')   # once, when the graph is loaded
    path.get(document).exists                                      # per request

A path that is probably a mistake (`predictions[0]`, `#(a==1)x`) is evaluated as Go evaluates it, and
`CompiledPath.warning` says what looks wrong; only a path Go can never match raises PathSyntaxError (see
`syntax`). Documents are parsed with `parse_document`, which keeps what Go sees of duplicate keys.

Differences from Go gjson, all deliberate:
- a path longer than 4096 characters, or nested past Python's recursion limit, is refused;
- a `!{...}` literal that is not valid JSON is refused (Go selects its text as it is);
- `Result.raw` is compact JSON rather than the original bytes of the document.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from modelplane.graph.gjson.compiler import Compiler
from modelplane.graph.gjson.document import parse_document
from modelplane.graph.gjson.nodes import GetNode
from modelplane.graph.gjson.syntax import PathSyntaxError, check_syntax
from modelplane.graph.gjson.values import MISSING, to_json

__all__ = ["CompiledPath", "PathSyntaxError", "Result", "compile_path", "matches", "parse_document"]

_MAX_PATH_LENGTH = 4096


class Result:
    """What a path selects in a document: `exists`, the parsed `value`, and its JSON text `raw`."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    @property
    def exists(self) -> bool:
        return self._value is not MISSING

    @property
    def value(self) -> Any:
        """The selected value; None both for JSON null and when nothing is selected (see `exists`)."""
        return None if self._value is MISSING else self._value

    @property
    def raw(self) -> str:
        """The selected value as compact JSON; "" when nothing is selected."""
        return to_json(self._value)

    def __repr__(self) -> str:
        return f"Result({self.raw})" if self.exists else "Result(<nothing>)"


class CompiledPath:
    """A parsed GJSON path, to evaluate against many documents."""

    __slots__ = ("path", "_root", "warning")

    def __init__(self, path: str, root: GetNode, warning: str | None = None) -> None:
        self.path = path
        self._root = root
        self.warning = warning  # what looks like a mistake in the path, evaluated as Go does all the same

    def get(self, document: Any) -> Result:
        """Evaluate against parsed JSON (dict, list, str, int, float, bool or None)."""
        return Result(self._root.get(document))

    def __repr__(self) -> str:
        return f"CompiledPath({self.path!r})"


def compile_path(path: str) -> CompiledPath:
    """Parse a GJSON path once; raises PathSyntaxError for a path modelplane refuses."""
    if len(path) > _MAX_PATH_LENGTH:
        raise PathSyntaxError(
            path, _MAX_PATH_LENGTH, f"the path is longer than {_MAX_PATH_LENGTH} characters", refused=True
        )
    warning = None
    try:
        try:
            check_syntax(path)
        except PathSyntaxError as exc:
            if exc.refused:
                raise
            warning = str(exc)
        root = Compiler().get(path)
    except RecursionError:
        raise PathSyntaxError(path, 0, "the path is nested too deeply", refused=True) from None
    return CompiledPath(path, root, warning)


@lru_cache(maxsize=512)
def _cached(condition: str) -> CompiledPath:
    return compile_path(condition)


def matches(document: Any, condition: str) -> bool:
    """Whether the condition selects something in the document (KServe's `Exists()`)."""
    return _cached(condition).get(document).exists
