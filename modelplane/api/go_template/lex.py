"""The lexer: a template's text as tokens, with Go's errors for what cannot be read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .fmt import go_quote
from .values import GoTemplateError

if TYPE_CHECKING:
    from .template import Template

_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
_LITERAL_WORDS = {"true", "false", "nil"}
_NUMBER = re.compile(
    r"[+-]?(0[xX][0-9a-fA-F_]*(\.[0-9a-fA-F_]*)?([pP][+-]?[0-9_]+)?|0[bB][01_]+|0[oO][0-7_]+"
    r"|([0-9][0-9_]*)?(\.[0-9_]*)?([eE][+-]?[0-9_]+)?)"
)
_WORD = re.compile(r"[^\W\d]\w*")  # Go's identifiers: any Unicode letter or `_`, then letters and digits


@dataclass
class Token:
    kind: str  # text, left, right, space, field, variable, identifier, keyword, string, raw, char,
    # number, bool, nil, pipe, declare, assign, comma, lparen, rparen, dot, eof
    value: str
    pos: int
    error: GoTemplateError | None = None

    def __str__(self) -> str:
        if self.kind == "eof":
            return "EOF"
        if self.kind in ("keyword", "dot"):
            return f"<{self.value}>"
        if len(self.value) > 10:
            return go_quote(self.value[:10]) + "..."
        return go_quote(self.value)


class Lexer:
    def __init__(self, template: Template):
        self.template = template
        self.text = template.text
        self.tokens: list[Token] = []

    def error(self, message: str, pos: int) -> GoTemplateError:
        return self.template.parse_error(message, pos)

    def run(self) -> list[Token]:
        """The tokens; an error as a last token, which the parser raises when it reaches it (as Go's
        parser says what it reads wrong before the lexer finds a later mistake)."""
        try:
            self._run()
        except GoTemplateError as error:
            self.tokens.append(Token("error", "", 0, error))
        return self.tokens

    def _run(self) -> None:
        text, pos = self.text, 0
        while True:
            start = text.find("{{", pos)
            if start < 0:
                self.tokens.append(Token("text", text[pos:], pos))
                break
            trim_left = text.startswith("{{-", start) and text[start + 3 : start + 4] in (
                " ",
                "\t",
                "\r",
                "\n",
            )
            chunk = text[pos:start]
            if trim_left:
                chunk = chunk.rstrip(" \t\r\n")
            if chunk:
                self.tokens.append(Token("text", chunk, pos))
            pos = self._action(start, trim_left)
        self.tokens.append(Token("eof", "", len(text)))

    def _right_delimiter(self, pos: int) -> tuple[bool, int] | None:
        """(trims, its length) if a right delimiter starts at `pos`."""
        text = self.text
        if text.startswith("-}}", pos) and pos > 0 and text[pos - 1] in " \t\r\n":
            return True, 3
        if text.startswith("}}", pos):
            return False, 2
        return None

    def _after_action(self, pos: int, trims: bool) -> int:
        if trims:
            while pos < len(self.text) and self.text[pos] in " \t\r\n":
                pos += 1
        return pos

    def _action(self, start: int, trim_left: bool) -> int:
        text = self.text
        pos = start + (4 if trim_left else 2)
        if text.startswith("/*", pos):
            end = text.find("*/", pos)
            if end < 0:
                raise self.error("unclosed comment", start)
            after = end + 2
            space = after
            while space < len(text) and text[space] in " \t\r\n":
                space += 1
            right = self._right_delimiter(space) if space > after else self._right_delimiter(after)
            if right is None or (space > after and not right[0]):
                raise self.error("comment ends before closing delimiter", start)
            return self._after_action((space if space > after else after) + right[1], right[0])
        self.tokens.append(Token("left", "{{", start))
        depth = 0
        while True:
            if pos >= len(text):
                raise self.error("unclosed action", start)
            right = self._right_delimiter(pos)
            if right is None and text[pos] in " \t\r\n" and self._right_delimiter(pos + 1) == (True, 3):
                pos += 1
                continue
            if right is not None:
                if depth:
                    raise self.error("unclosed left paren", start)
                self.tokens.append(Token("right", "}}", pos))
                return self._after_action(pos + right[1], right[0])
            char = text[pos]
            if char in " \t\r\n":
                end = pos
                while end < len(text) and text[end] in " \t\r\n":
                    end += 1
                self.tokens.append(Token("space", text[pos:end], pos))
                pos = end
            elif text.startswith(":=", pos):
                self.tokens.append(Token("declare", ":=", pos))
                pos += 2
            elif char in "=|,":
                self.tokens.append(Token({"=": "assign", "|": "pipe", ",": "comma"}[char], char, pos))
                pos += 1
            elif char == "(":
                depth += 1
                self.tokens.append(Token("lparen", char, pos))
                pos += 1
            elif char == ")":
                depth -= 1
                if depth < 0:
                    raise self.error("unexpected right paren", pos)
                self.tokens.append(Token("rparen", char, pos))
                pos += 1
            elif char == '"':
                pos = self._quoted(pos, '"', "string", "unterminated quoted string")
            elif char == "`":
                end = text.find("`", pos + 1)
                if end < 0:
                    raise self.error("unterminated raw quoted string", pos)
                self.tokens.append(Token("raw", text[pos : end + 1], pos))
                pos = end + 1
            elif char == "'":
                pos = self._quoted(pos, "'", "char", "unterminated character constant")
            elif char == "$":
                found = _WORD.match(text, pos + 1)
                end = found.end() if found else pos + 1
                self.tokens.append(Token("variable", text[pos:end], pos))
                pos = self._terminated(end)
            elif char == "." and pos + 1 < len(text) and (text[pos + 1].isalpha() or text[pos + 1] == "_"):
                found = _WORD.match(text, pos + 1)
                assert found is not None
                self.tokens.append(Token("field", text[pos : found.end()], pos))
                pos = self._terminated(found.end())
            elif char.isdigit() or (char in "+-." and pos + 1 < len(text) and text[pos + 1].isdigit()):
                found = _NUMBER.match(text, pos)
                end = found.end() if found and found.end() > pos else pos + 1
                while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                    end += 1  # Go reads on to the end of a word, and refuses what it read
                self.tokens.append(Token("number", text[pos:end], pos))
                pos = end
            elif char == ".":
                self.tokens.append(Token("dot", ".", pos))
                pos += 1
            elif char.isalpha() or char == "_":
                found = _WORD.match(text, pos)
                assert found is not None
                word = found.group(0)
                kind = (
                    "keyword"
                    if word in _KEYWORDS
                    else "bool"
                    if word in ("true", "false")
                    else "nil"
                    if word == "nil"
                    else "identifier"
                )
                self.tokens.append(Token(kind, word, pos))
                pos = self._terminated(found.end())
            elif char.isprintable() and ord(char) < 128:
                self.tokens.append(Token("char", char, pos))  # refused by the parser, as Go's
                pos += 1
            else:
                raise self.error(f"unrecognized character in action: {_go_quote_rune(char)}", pos)

    def _terminated(self, pos: int) -> int:
        """`pos`, after a word, where Go's lexer wants a space, a delimiter or punctuation."""
        if (
            pos < len(self.text)
            and self.text[pos] not in " \t\r\n.,|:()"
            and not self.text.startswith("}}", pos)
        ):
            raise self.error(f"bad character {_go_quote_rune(self.text[pos])}", pos)
        return pos

    def _quoted(self, pos: int, quote: str, kind: str, unterminated: str) -> int:
        text, end = self.text, pos + 1
        while True:
            if end >= len(text) or text[end] == "\n":
                raise self.error(unterminated, pos)
            if text[end] == "\\":
                end += 2
                continue
            if text[end] == quote:
                break
            end += 1
        self.tokens.append(Token("string" if kind == "string" else "charconst", text[pos : end + 1], pos))
        return end + 1


def _go_quote_rune(char: str) -> str:
    return f"U+{ord(char):04X} '{char}'"
