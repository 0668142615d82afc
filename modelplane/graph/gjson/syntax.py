"""What in a GJSON path is probably a mistake, and what modelplane refuses.

Go gjson accepts any text and reads it its own way: `predictions[0]` is the key "predictions[0]", never an
index; `#(a==1)x` is the query `#(a==1)`; an unclosed query selects the elements that are strings, numbers
or have the key "". modelplane evaluates such paths exactly as Go does, and `check_syntax` names the first
thing that is probably a mistake, with its position (counted from 1), so that `apply` warns about it:

- an empty path, or an empty component (`.a`, `a..b`, `a.`, `a|`, `[a,]`), which Go reads as the key "";
- brackets, parentheses or braces that do not pair up, an unclosed `"`, a `\\` at the very end;
- a bracket or a quote inside a key (a key that really has one is written with a `\\`: `a\\(b`);
- a query that is empty (`#()`), has an operator `!` that is not `!=` or `!%`, a quoted right-hand side
  followed by more text (`#(a=="x"y)`);
- text right after a query, a multipath or a modifier argument that is not `.`, `|` or (after a query) `#`;
- a modifier argument that is not valid JSON.

A problem is `refused` only where Go can never select anything: a `~` value other than `~true`,
`~false`, `~null` and `~*` in a query whose failure is the whole path's (not inside a multipath, not in an
all-matches `#(...)#`, which selects `[]`). A `!{...}` or `![...]` literal that is not valid JSON is also
refused: Go selects its text as it is, which modelplane, evaluating parsed JSON, cannot.
"""

from __future__ import annotations

import orjson

from modelplane.graph.gjson.modifiers import MODIFIERS
from modelplane.graph.gjson.scan import split_operator

_OPENER_OF = {")": "(", "]": "[", "}": "{"}
_TILDE_VALUES = ("~true", "~false", "~null", "~*")


class PathSyntaxError(ValueError):
    """A problem in a GJSON path; `position` is the 0-based index of the problem in `path`. When
    `refused`, modelplane refuses the path; otherwise it is evaluated as Go does, with a warning."""

    def __init__(self, path: str, position: int, problem: str, *, refused: bool = False) -> None:
        super().__init__(f"{problem} at position {position + 1}")
        self.path = path
        self.position = position
        self.problem = problem
        self.refused = refused


def check_syntax(path: str) -> None:
    """Raise PathSyntaxError for the first problem of a path (see `PathSyntaxError.refused`)."""
    checker = _Checker(path)
    checker.check_pairs()
    checker.check_get(0, len(path), "the path is empty")


class _Checker:
    def __init__(self, path: str) -> None:
        self.path = path
        self.closing: dict[int, int] = {}  # index of an opening bracket or quote -> index of its closer
        # Whether what is being checked selecting nothing makes the whole path select nothing.
        self.decisive = True

    def fail(self, position: int, problem: str, *, refused: bool = False) -> None:
        raise PathSyntaxError(self.path, position, problem, refused=refused)

    def check_aside(self, start: int, end: int, if_empty: str) -> None:
        """Check a path whose selecting nothing does not decide the whole path's result."""
        decisive, self.decisive = self.decisive, False
        try:
            self.check_get(start, end, if_empty)
        finally:
            self.decisive = decisive

    def check_pairs(self) -> None:
        path, open_brackets = self.path, []
        i = 0
        while i < len(path):
            char = path[i]
            if char == "\\":
                if i + 1 == len(path):
                    self.fail(i, "'\\' at the end escapes nothing")
                i += 2
                continue
            if char == '"':
                end = self._string_end(i)
                if end == len(path):
                    self.fail(i, "'\"' is never closed")
                self.closing[i] = end
                i = end + 1
                continue
            if char in "([{":
                open_brackets.append(i)
            elif char in _OPENER_OF:
                if not open_brackets or path[open_brackets[-1]] != _OPENER_OF[char]:
                    self.fail(i, f"'{char}' closes nothing")
                self.closing[open_brackets.pop()] = i
            i += 1
        if open_brackets:
            self.fail(open_brackets[-1], f"'{path[open_brackets[-1]]}' is never closed")

    def _string_end(self, start: int) -> int:
        """Index of the quote that closes the string opening at start, or len(path)."""
        i = start + 1
        while i < len(self.path):
            if self.path[i] == "\\":
                i += 2
            elif self.path[i] == '"':
                return i
            else:
                i += 1
        return len(self.path)

    # A whole path: modifier, literal, multipath, `..` lines, or components.

    def check_get(self, start: int, end: int, if_empty: str) -> None:
        path = self.path
        if start == end:
            self.fail(start, if_empty)
        if end - start > 1:
            first = path[start]
            if first == "@" and self._modifier_name(start, end) in MODIFIERS:
                return self._check_modifier(start, end)
            if first == "!" and self._check_literal(start, end):
                return None
            if first in "[{":
                return self._check_multipath(start, end)
            if path.startswith("..", start):
                return self.check_chain(start + 2, end, "nothing follows '..'")
        return self.check_chain(start, end, if_empty)

    def _modifier_name(self, start: int, end: int) -> str:
        """The name after the `@` at start, up to a `:`, `|` or `.`."""
        name_end = start + 1
        while name_end < end and self.path[name_end] not in ":|.":
            name_end += 1
        return self.path[start + 1 : name_end]

    def _check_modifier(self, start: int, end: int) -> None:
        after = start + 1 + len(self._modifier_name(start, end))
        if after < end and self.path[after] == ":":
            after += 1
            if after < end and self.path[after] in "{[":
                argument_end = self.closing[after] + 1
                self._check_json(after, argument_end, "the modifier argument is not valid JSON")
                after = argument_end
            else:
                while after < end and self.path[after] != "|":
                    after = self.closing.get(after, after) + 1
        self._check_then(after, end, "the modifier")

    def _check_literal(self, start: int, end: int) -> bool:
        """Check a `!` literal; False when the text is not one (Go then reads it as a key)."""
        first = self.path[start + 1]
        if first in "{[":
            literal_end = self.closing[start + 1] + 1
            self._check_json(start + 1, literal_end, "the literal is not valid JSON", refused=True)
            self._check_then(literal_end, end, "the literal")
            return True
        if first in '"+-0123456789':
            self._check_json(start + 1, end, "the literal is not valid JSON")
            return True
        name_end = start + 1
        while name_end < end and self.path[name_end] not in ".|":
            name_end += 1
        if self.path[start + 1 : name_end].lower() not in ("true", "false", "null", "nan", "inf"):
            return False
        self._check_then(name_end, end, "the literal")
        return True

    def _check_json(self, start: int, end: int, problem: str, *, refused: bool = False) -> None:
        try:
            orjson.loads(self.path[start:end])
        except orjson.JSONDecodeError:
            self.fail(start, problem, refused=refused)

    def _check_multipath(self, start: int, end: int) -> None:
        close = self.closing[start]
        member_start = start + 1
        depth = 0
        i = member_start
        while i <= close:
            char = self.path[i]
            if char == "\\":
                i += 2
                continue
            if char == '"':
                i = self.closing[i] + 1
                continue
            if char in "([{":
                depth += 1
            elif char in _OPENER_OF and depth > 0:
                depth -= 1
            elif (char == "," and depth == 0) or i == close:
                self._check_member(member_start, i)
                member_start = i + 1
            i += 1
        self._check_then(close + 1, end, f"'{self.path[close]}'")

    def _check_member(self, start: int, end: int) -> None:
        """`path` or `name:path`; as in Go, a `:` after a `.@` or `|@` modifier belongs to it."""
        colon, i = -1, start
        while i < end:
            char = self.path[i]
            if char == "\\":
                i += 2
                continue
            if char == '"':
                i = self.closing[i] + 1
                continue
            if char in "([{":
                i = self.closing[i] + 1
                continue
            if char == "@" and i > start and self.path[i - 1] in ".|":
                break
            if char == ":":
                colon = i
                break
            i += 1
        # A multipath exists whatever its members select.
        self.check_aside(colon + 1 if colon >= 0 else start, end, "a multipath member is empty")

    def _check_then(self, after: int, end: int, what: str) -> None:
        if after == end:
            return
        if self.path[after] not in ".|":
            self.fail(after, f"expected '.' or '|' after {what}, found {self.path[after]!r}")
        self.check_get(after + 1, end, f"nothing follows '{self.path[after]}'")

    # Components: keys and indexes, `#`, `#.path`, queries.

    def check_chain(self, start: int, end: int, if_empty: str) -> None:
        path = self.path
        while True:
            if start == end:
                self.fail(start, if_empty)
            if path[start] == "#" and start + 1 < end and path[start + 1] in "([":
                return self._check_query(start, end)
            if path[start] == "#" and start + 1 < end and path[start + 1] == ".":
                return self.check_aside(start + 2, end, "nothing follows '#.'")  # `#.` selects `[]`
            i = start
            while i < end and path[i] not in ".|":
                if path[i] == '"':
                    self.fail(i, "a '\"' in a key must be escaped ('\\\"')")
                if path[i] in "([{":
                    hint = " (an array index is written '.0')" if path[i] == "[" else ""
                    self.fail(i, f"a '{path[i]}' in a key must be escaped ('\\{path[i]}'){hint}")
                i += 2 if path[i] == "\\" else 1
            if i == start:
                self.fail(start, "a path component is empty")
            if i >= end:
                return None
            if path[i] == "|" or (i + 1 < end and self._dot_pipes(i + 1, end)):
                return self.check_get(i + 1, end, f"nothing follows '{path[i]}'")
            start, if_empty = i + 1, "nothing follows '.'"

    def _dot_pipes(self, start: int, end: int) -> bool:
        """Whether what follows a `.` is read as if after a `|`: a multipath or a modifier."""
        char = self.path[start]
        return char in "[{" or (char == "@" and self._modifier_name(start, end) in MODIFIERS)

    def _check_query(self, start: int, end: int) -> None:
        close = self.closing[start + 1]
        after = close + 1
        every = after < end and self.path[after] == "#"  # `#(...)#` selects `[]` when nothing matches
        decisive = self.decisive
        self.decisive = decisive and not every
        try:
            self._check_query_body(start + 2, close)
            if every:
                after += 1
            if after == end:
                return
            if self.path[after] not in ".|":
                self.fail(after, f"expected '.', '|' or '#' after the query, found {self.path[after]!r}")
            self.check_get(after + 1, end, f"nothing follows '{self.path[after]}'")
        finally:
            self.decisive = decisive

    def _check_query_body(self, start: int, end: int) -> None:
        path = self.path
        op_start, i = -1, start
        while i < end:
            char = path[i]
            if char in "!=<>%":
                op_start = i
                break
            if char == "\\":
                i += 2
            elif char == '"' or char in "([{":
                i = self.closing[i] + 1
            else:
                i += 1
        lhs_start, lhs_end = self._trimmed(start, end if op_start < 0 else op_start)
        if op_start < 0:
            if lhs_start == lhs_end:
                self.fail(start, "the query is empty")
            return self.check_get(lhs_start, lhs_end, "the query is empty")
        if lhs_start < lhs_end:
            self.check_get(lhs_start, lhs_end, "the query is empty")
        self._check_comparison(op_start, end)

    def _check_comparison(self, start: int, end: int) -> None:
        path = self.path
        text = path[start:end].rstrip()
        if text[0] == "!" and text[1:2] not in ("=", "%"):
            self.fail(start, "unknown operator '!' (use '!=' or '!%')")
        op, value = split_operator(text)
        value_start = path.index(value, start + len(op)) if value else end
        if value.startswith('"'):
            closing = self.closing[value_start]
            if closing != value_start + len(value) - 1:
                self.fail(closing + 1, "unexpected text after the quoted value")
        elif value.startswith("~") and value not in _TILDE_VALUES:
            self.fail(
                value_start, "unknown '~' value (use ~true, ~false, ~null or ~*)", refused=self.decisive
            )

    def _trimmed(self, start: int, end: int) -> tuple[int, int]:
        while start < end and self.path[start] <= " ":
            start += 1
        while end > start and self.path[end - 1] <= " ":
            end -= 1
        return start, end
