"""GJSON's wildcard patterns: `*` matches any run of characters, `?` any one, `\\c` the character c.

Used by the `%` and `!%` query operators and by wildcard keys (`child*`). A pattern is compiled once into
its pieces between stars; matching finds each piece at its leftmost place, which is linear in the text
for a fixed pattern, so a request body cannot make a condition slow (Go gjson caps its own backtracking
matcher instead; the answers agree wherever Go's cap is not reached).
"""

from __future__ import annotations

import re
from functools import lru_cache


class Glob:
    """A compiled wildcard pattern."""

    __slots__ = ("_pieces", "_tail_length", "_starred", "_never")

    def __init__(self, pattern: str) -> None:
        pieces: list[list[str]] = [[]]
        never = False
        i = 0
        while i < len(pattern):
            char = pattern[i]
            if char == "*":
                pieces.append([])
            elif char == "?":
                pieces[-1].append(".")
            elif char == "\\":
                i += 1
                if i == len(pattern):
                    never = True  # a trailing backslash matches nothing in Go
                    break
                pieces[-1].append(re.escape(pattern[i]))
            else:
                pieces[-1].append(re.escape(char))
            i += 1
        self._never = never
        self._starred = len(pieces) > 1
        self._pieces = [re.compile("".join(piece), re.DOTALL) for piece in pieces]
        self._tail_length = len(pieces[-1])  # every item of a piece matches exactly one character

    def matches(self, text: str) -> bool:
        if self._never:
            return False
        pieces = self._pieces
        if not self._starred:
            return pieces[0].fullmatch(text) is not None
        first, last = pieces[0], pieces[-1]
        head = first.match(text)
        if head is None:
            return False
        start = head.end()
        # The last piece must end the text; it has a fixed length, so look for it there.
        tail_start = len(text) - self._tail_length
        if tail_start < start or last.fullmatch(text, tail_start) is None:
            return False
        for middle in pieces[1:-1]:
            found = middle.search(text, start, tail_start)
            if found is None:
                return False
            start = found.end()
        return True


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> Glob:
    return Glob(pattern)


def glob_matches(text: str, pattern: str) -> bool:
    return compile_glob(pattern).matches(text)
