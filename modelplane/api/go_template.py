"""Go's text/template: the templates of `modelplane get -o go-template=...` (kubectl's) and of runtime
containers (KServe's html/template, in `modelplane.api.templates`).

Actions: `{{pipeline}}`, `{{if}}`/`{{else if}}`/`{{else}}`/`{{end}}`, `{{range}}` (with `{{break}}`,
`{{continue}}`), `{{with}}`/`{{else with}}`, variables (`$x := ...`, `$x = ...`, `$`), trim markers
(`{{- ` and ` -}}`), comments (`{{/* */}}`), the builtin functions, and nested templates
(`{{define "T"}}...{{end}}`, `{{template "T" pipeline}}`, `{{block "T" pipeline}}...{{end}}`; one
template calls others at most `MAX_TEMPLATE_DEPTH` deep, where Go allows 100000). Values are Python's: a dict is a Go map (its keys sorted when ranged over or
printed), a list a slice, an int an int, a float a float64, None a nil interface, and `GoStruct` a
struct, whose fields a template may name and no others. Errors say what Go's say.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelplane.api.go_format import (
    Base64Error,
    go_base64_decode,
    go_sprint,
    go_sprintf,
    go_sprintln,
    go_type_name,
    go_value_string,
)


class GoTemplateError(ValueError):
    """A template that does not parse, or that cannot be executed on the data given."""


# Bounds Go does not have (or has far higher), so that a template cannot exhaust Python's stack, the
# memory or the time of whoever runs it (the CLI, the controller rendering a runtime's containers).
MAX_NESTING = 100  # `{{if}}`, `{{range}}`, `{{with}}` and parentheses inside each other
MAX_OUTPUT = 64 * 2**20  # characters written, and made by functions (`printf`), in one execution
MAX_STEPS = 1_000_000  # actions, texts and range iterations executed in one execution


class _Missing:
    """Go's invalid reflect.Value: what a missing map key gives, printed `<no value>`."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING: Any = _Missing()


@dataclass
class GoStruct:
    """A Go struct: `type_name` as Go prints it (`v1.ObjectMeta`), and its fields."""

    type_name: str
    fields: dict[str, Any]


# ---- lexer ----

_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
_LITERAL_WORDS = {"true", "false", "nil"}
_NUMBER = re.compile(
    r"[+-]?(0[xX][0-9a-fA-F_]*(\.[0-9a-fA-F_]*)?([pP][+-]?[0-9_]+)?|0[bB][01_]+|0[oO][0-7_]+"
    r"|([0-9][0-9_]*)?(\.[0-9_]*)?([eE][+-]?[0-9_]+)?)"
)
_WORD = re.compile(r"[^\W\d]\w*")  # Go's identifiers: any Unicode letter or `_`, then letters and digits


@dataclass
class _Token:
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
            return _go_quote(self.value[:10]) + "..."
        return _go_quote(self.value)


class _Lexer:
    def __init__(self, template: Template):
        self.template = template
        self.text = template.text
        self.tokens: list[_Token] = []

    def error(self, message: str, pos: int) -> GoTemplateError:
        return self.template.parse_error(message, pos)

    def run(self) -> list[_Token]:
        """The tokens; an error as a last token, which the parser raises when it reaches it (as Go's
        parser says what it reads wrong before the lexer finds a later mistake)."""
        try:
            self._run()
        except GoTemplateError as error:
            self.tokens.append(_Token("error", "", 0, error))
        return self.tokens

    def _run(self) -> None:
        text, pos = self.text, 0
        while True:
            start = text.find("{{", pos)
            if start < 0:
                self.tokens.append(_Token("text", text[pos:], pos))
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
                self.tokens.append(_Token("text", chunk, pos))
            pos = self._action(start, trim_left)
        self.tokens.append(_Token("eof", "", len(text)))

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
        self.tokens.append(_Token("left", "{{", start))
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
                self.tokens.append(_Token("right", "}}", pos))
                return self._after_action(pos + right[1], right[0])
            char = text[pos]
            if char in " \t\r\n":
                end = pos
                while end < len(text) and text[end] in " \t\r\n":
                    end += 1
                self.tokens.append(_Token("space", text[pos:end], pos))
                pos = end
            elif text.startswith(":=", pos):
                self.tokens.append(_Token("declare", ":=", pos))
                pos += 2
            elif char in "=|,":
                self.tokens.append(_Token({"=": "assign", "|": "pipe", ",": "comma"}[char], char, pos))
                pos += 1
            elif char == "(":
                depth += 1
                self.tokens.append(_Token("lparen", char, pos))
                pos += 1
            elif char == ")":
                depth -= 1
                if depth < 0:
                    raise self.error("unexpected right paren", pos)
                self.tokens.append(_Token("rparen", char, pos))
                pos += 1
            elif char == '"':
                pos = self._quoted(pos, '"', "string", "unterminated quoted string")
            elif char == "`":
                end = text.find("`", pos + 1)
                if end < 0:
                    raise self.error("unterminated raw quoted string", pos)
                self.tokens.append(_Token("raw", text[pos : end + 1], pos))
                pos = end + 1
            elif char == "'":
                pos = self._quoted(pos, "'", "char", "unterminated character constant")
            elif char == "$":
                found = _WORD.match(text, pos + 1)
                end = found.end() if found else pos + 1
                self.tokens.append(_Token("variable", text[pos:end], pos))
                pos = self._terminated(end)
            elif char == "." and pos + 1 < len(text) and (text[pos + 1].isalpha() or text[pos + 1] == "_"):
                found = _WORD.match(text, pos + 1)
                assert found is not None
                self.tokens.append(_Token("field", text[pos : found.end()], pos))
                pos = self._terminated(found.end())
            elif char.isdigit() or (char in "+-." and pos + 1 < len(text) and text[pos + 1].isdigit()):
                found = _NUMBER.match(text, pos)
                end = found.end() if found and found.end() > pos else pos + 1
                while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                    end += 1  # Go reads on to the end of a word, and refuses what it read
                self.tokens.append(_Token("number", text[pos:end], pos))
                pos = end
            elif char == ".":
                self.tokens.append(_Token("dot", ".", pos))
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
                self.tokens.append(_Token(kind, word, pos))
                pos = self._terminated(found.end())
            elif char.isprintable() and ord(char) < 128:
                self.tokens.append(_Token("char", char, pos))  # refused by the parser, as Go's
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
        self.tokens.append(_Token("string" if kind == "string" else "charconst", text[pos : end + 1], pos))
        return end + 1


def _go_quote_rune(char: str) -> str:
    return f"U+{ord(char):04X} '{char}'"


def _go_quote(text: str) -> str:
    from modelplane.api.go_format import go_quote

    return go_quote(text)


# ---- nodes ----


@dataclass
class _Node:
    pos: int


@dataclass
class _Text(_Node):
    text: str


@dataclass
class _Field(_Node):
    names: list[str]

    def __str__(self) -> str:
        return "".join("." + name for name in self.names)


@dataclass
class _Variable(_Node):
    name: str
    names: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.name + "".join("." + name for name in self.names)


@dataclass
class _Dot(_Node):
    def __str__(self) -> str:
        return "."


@dataclass
class _Identifier(_Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass
class _Literal(_Node):
    value: Any
    source: str

    def __str__(self) -> str:
        return self.source


@dataclass
class _Chain(_Node):
    node: _Node
    names: list[str]

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, _Pipe) else str(self.node)
        return inner + "".join("." + name for name in self.names)


@dataclass
class _Command(_Node):
    args: list[_Node]

    def __str__(self) -> str:
        return " ".join(f"({arg})" if isinstance(arg, _Pipe) else str(arg) for arg in self.args)


@dataclass
class _Pipe(_Node):
    declared: list[str]
    is_assign: bool
    commands: list[_Command]

    def __str__(self) -> str:
        head = ""
        if self.declared:
            head = ", ".join(self.declared) + (" = " if self.is_assign else " := ")
        return head + " | ".join(str(command) for command in self.commands)


@dataclass
class _Action(_Node):
    pipe: _Pipe


@dataclass
class _Branch(_Node):
    keyword: str  # if, range, with
    pipe: _Pipe
    body: list[_Node]
    otherwise: list[_Node] | None


@dataclass
class _TemplateCall(_Node):
    name: str
    pipe: _Pipe | None

    def __str__(self) -> str:
        pipe = "" if self.pipe is None else f" {self.pipe}"
        return f"{{{{template {_go_quote(self.name)}{pipe}}}}}"


@dataclass
class _Break(_Node):
    pass


@dataclass
class _Continue(_Node):
    pass


class _BreakSignal(Exception):
    pass


class _ContinueSignal(Exception):
    pass


# ---- parser ----


class _Parser:
    def __init__(self, template: Template, tokens: list[_Token], functions: dict[str, Callable]):
        self.template = template
        self.tokens = tokens
        self.index = 0
        self.functions = functions
        self.variables: list[str] = ["$"]
        self.range_depth = 0
        self.trees: dict[str, list[_Node]] = {}
        self.nesting = 0

    def nested(self, pos: int) -> None:
        """One level deeper; an error past MAX_NESTING (Go's is 10000, for parentheses only)."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error(f"max expression depth exceeded (modelplane's limit: {MAX_NESTING})", pos)

    def error(self, message: str, pos: int | None = None) -> GoTemplateError:
        return self.template.parse_error(message, self.peek().pos if pos is None else pos)

    def peek(self) -> _Token:
        token = self.tokens[self.index]
        if token.error is not None:
            raise token.error
        return token

    def next(self) -> _Token:
        token = self.tokens[self.index]
        if token.error is not None:
            raise token.error
        self.index += 1
        return token

    def next_non_space(self) -> _Token:
        token = self.next()
        while token.kind == "space":
            token = self.next()
        return token

    def peek_non_space(self) -> _Token:
        index = self.index
        while self.tokens[index].kind == "space":
            index += 1
        if self.tokens[index].error is not None:
            raise self.tokens[index].error
        return self.tokens[index]

    def parse(self) -> dict[str, list[_Node]]:
        """Each template the text defines, by name, the text outside the definitions as the template's own."""
        nodes, ending = self.item_list(top=True)
        self.add_tree(self.template.name, nodes)
        return self.trees

    def add_tree(self, name: str, nodes: list[_Node]) -> None:
        """Go's rule: an empty definition does not replace one with content, and two with content clash."""
        if name not in self.trees or _is_empty(self.trees[name]):
            self.trees[name] = nodes
        elif not _is_empty(nodes):
            raise self.error(
                f"template: multiple definition of template {_go_quote(name)}",
                self.tokens[self.index - 1].pos,
            )

    def nested_tree(self, context: str) -> list[_Node]:
        """The body of a `define` or `block`, to its `{{end}}`: a template of its own, which sees only `$`."""
        variables, range_depth = self.variables, self.range_depth
        self.variables, self.range_depth = ["$"], 0
        nodes, ending = self.item_list()
        if ending != "end":
            raise self.error(f"unexpected {{{{{ending}}}}} in {context}")
        self.variables, self.range_depth = variables, range_depth
        return nodes

    def definition(self) -> None:
        name = self.template_name(self.next_non_space(), "define clause")
        self.expect_right("define clause")
        self.add_tree(name, self.nested_tree("define clause"))

    def template_name(self, token: _Token, context: str) -> str:
        if token.kind not in ("string", "raw"):
            raise self.error(f"unexpected {token} in {context}", token.pos)
        if token.kind == "raw":
            return token.value[1:-1]
        try:
            return _unquote(token.value)
        except ValueError:
            raise self.error("invalid syntax", token.pos) from None

    def template_call(self, keyword: _Token) -> _TemplateCall:
        context = f"{keyword.value} clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        if keyword.value == "block":
            pipe = self.pipeline(context, "right")
            self.add_tree(name, self.nested_tree(context))
            return _TemplateCall(token.pos, name, pipe)
        if self.peek_non_space().kind == "right":
            self.next_non_space()
            return _TemplateCall(token.pos, name, None)
        return _TemplateCall(token.pos, name, self.pipeline(context, "right"))

    def item_list(self, top: bool = False) -> tuple[list[_Node], str]:
        """Nodes up to `{{end}}` or `{{else}}` (which it returns), or to the end of the text at the top."""
        nodes: list[_Node] = []
        while True:
            token = self.next()
            if token.kind == "eof":
                if top:
                    return nodes, "eof"
                raise self.error("unexpected EOF", token.pos)
            if token.kind == "text":
                nodes.append(_Text(token.pos, token.value))
                continue
            # a left delimiter
            keyword = self.peek_non_space()
            if keyword.kind == "keyword" and keyword.value in ("end", "else"):
                self.next_non_space()
                if top:
                    raise self.error(f"unexpected {{{{{keyword.value}}}}}", keyword.pos)
                if keyword.value == "end":
                    self.expect_right("end")
                return nodes, keyword.value
            if top and keyword.kind == "keyword" and keyword.value == "define":
                self.next_non_space()
                self.definition()
                continue
            nodes.append(self.action())

    def expect_right(self, context: str) -> None:
        token = self.next_non_space()
        if token.kind != "right":
            raise self.error(f"unexpected {token} in {context}", token.pos)

    def action(self) -> _Node:
        token = self.peek_non_space()
        if (
            token.kind == "keyword" and token.value != "define"
        ):  # `define` in an action: the pipeline refuses it
            self.next_non_space()
            if token.value in ("if", "range", "with"):
                return self.branch(token)
            if token.value in ("break", "continue"):
                if not self.range_depth:
                    raise self.error(f"{{{{{token.value}}}}} outside {{{{range}}}}", token.pos)
                self.expect_right(token.value)
                return _Break(token.pos) if token.value == "break" else _Continue(token.pos)
            return self.template_call(token)
        pipe = self.pipeline("command", "right")
        return _Action(token.pos, pipe)

    def branch(self, keyword: _Token) -> _Branch:
        self.nested(keyword.pos)
        depth = len(self.variables)
        pipe = self.pipeline(keyword.value, "right")
        if keyword.value == "range":
            self.range_depth += 1
        body, ending = self.item_list()
        if keyword.value == "range":
            self.range_depth -= 1
        otherwise = None
        if ending == "else":
            following = self.peek_non_space()
            if (
                keyword.value in ("if", "with")
                and following.kind == "keyword"
                and following.value == keyword.value
            ):
                # `{{else if ...}}` is `{{else}}{{if ...}}...{{end}}{{end}}`, sharing the one `{{end}}`
                self.next_non_space()
                otherwise = [self.branch(following)]
            else:
                self.expect_right("else")
                otherwise, ending = self.item_list()
                if ending != "end":
                    raise self.error("expected end; found {{else}}")
        del self.variables[depth:]
        self.nesting -= 1
        return _Branch(keyword.pos, keyword.value, pipe, body, otherwise)

    def pipeline(self, context: str, end: str) -> _Pipe:
        start = self.peek_non_space()
        declared: list[str] = []
        is_assign = False
        # `$x :=`, `$x =`, `$i, $e :=` (range only)
        saved = self.index
        token = self.next_non_space()
        if token.kind == "variable":
            following = self.next_non_space()
            if following.kind in ("declare", "assign"):
                declared = [token.value]
                is_assign = following.kind == "assign"
            elif following.kind == "comma" and context == "range":
                second = self.next_non_space()
                operator = self.next_non_space()
                if second.kind != "variable" or operator.kind not in ("declare", "assign"):
                    raise self.error("range can only initialize variables", second.pos)
                declared = [token.value, second.value]
                is_assign = operator.kind == "assign"
            else:
                self.index = saved
        else:
            self.index = saved
        for name in declared:
            if is_assign:
                if name not in self.variables:
                    raise self.error(f'undefined variable "{name}"', start.pos)
            else:
                self.variables.append(name)
        commands: list[_Command] = []
        while True:
            token = self.peek_non_space()
            if token.kind == end:
                self.next_non_space()
                if not commands:
                    raise self.error(f"missing value for {context}", token.pos)
                # Only the first command may begin with a value that is not run (Go's checkPipeline).
                for stage, later in enumerate(commands[1:], start=2):
                    if isinstance(later.args[0], _Literal | _Dot):
                        raise self.error(f"non executable command in pipeline stage {stage}", token.pos)
                return _Pipe(start.pos, declared, is_assign, commands)
            if token.kind in ("eof",):
                raise self.error("unclosed action", token.pos)
            if token.kind not in _COMMAND_STARTS:
                raise self.error(f"unexpected {token} in {context}", token.pos)
            commands.append(self.command())
            if self.peek_non_space().kind == "pipe":
                self.next_non_space()  # a pipe before the end is no command more, as Go takes it

    def command(self) -> _Command:
        start = self.peek_non_space()
        args: list[_Node] = []
        while True:
            token = self.peek()
            if token.kind == "space":
                self.next()
                continue
            if token.kind in ("right", "rparen", "pipe"):
                break
            operand = self.operand()
            if operand is None:
                raise self.error(f"unexpected {token} in operand", token.pos)
            args.append(operand)
            following = self.peek()
            if following.kind not in ("space", "right", "rparen", "pipe"):
                raise self.error(f"unexpected {following} in operand", following.pos)
        if not args:
            raise self.error("empty command", start.pos)
        return _Command(start.pos, args)

    def operand(self) -> _Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind == "field":
            chain_pos = self.peek().pos
            names = []
            while self.peek().kind == "field":
                names.append(self.next().value[1:])
            if isinstance(node, _Field):
                return _Field(chain_pos, node.names + names)
            if isinstance(node, _Variable):
                return _Variable(chain_pos, node.name, node.names + names)
            if isinstance(node, _Literal | _Dot) and not isinstance(node, _Pipe):
                raise self.error(f"unexpected . after term {str(node)!r}", chain_pos)
            return _Chain(chain_pos, node, names)
        return node

    def term(self) -> _Node | None:
        token = self.next()
        kind = token.kind
        if kind == "identifier":
            if token.value not in self.functions:
                raise self.error(f'function "{token.value}" not defined', token.pos)
            return _Identifier(token.pos, token.value)
        if kind == "dot":
            return _Dot(token.pos)
        if kind == "nil":
            return _Literal(token.pos, None, "nil")
        if kind == "variable":
            if token.value not in self.variables:
                raise self.error(f'undefined variable "{token.value}"', token.pos)
            return _Variable(token.pos, token.value)
        if kind == "field":
            return _Field(token.pos, [token.value[1:]])
        if kind == "bool":
            return _Literal(token.pos, token.value == "true", token.value)
        if kind in ("charconst", "number"):
            return _Literal(token.pos, self.number(token), token.value)
        if kind == "lparen":
            self.nested(token.pos)
            pipe = self.pipeline("parenthesized pipeline", "rparen")
            self.nesting -= 1
            return pipe
        if kind in ("string", "raw"):
            return _Literal(token.pos, self.string(token), token.value)
        self.index -= 1
        return None

    def string(self, token: _Token) -> str:
        if token.kind == "raw":
            return token.value[1:-1]
        try:
            return _unquote(token.value)
        except ValueError:
            raise self.error(f"invalid syntax: {token.value}", token.pos) from None

    def number(self, token: _Token) -> int | float:
        text = token.value
        if token.kind == "charconst":
            try:
                value = _unquote('"' + text[1:-1].replace('"', '\\"') + '"')
            except ValueError:
                value = ""
            if len(value) != 1:
                raise self.error(f"malformed character constant: {text}", token.pos)
            return ord(value)
        cleaned = text.replace("_", "")
        value: int | float
        overflowed = False
        try:
            if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+|[+-]?0[bB][01]+|[+-]?0[oO][0-7]+", cleaned):
                value = int(cleaned, 0)
            elif re.fullmatch(r"[+-]?0[0-7]*", cleaned):
                value = int(cleaned, 8) if len(cleaned.lstrip("+-")) > 1 else 0
            elif re.fullmatch(r"[+-]?[0-9]+", cleaned):
                # Digits Go cannot read as an int64 or a uint64 (too large, or 09 as octal) it reads as
                # a float, and refuses as an integer that overflowed.
                value = int(cleaned)
                overflowed = cleaned.lstrip("+-")[:1] == "0" or not -(1 << 63) <= value < 1 << 64
            elif "x" in cleaned.lower():
                value = float.fromhex(cleaned)
            else:
                value = float(cleaned)
        except ValueError:
            raise self.error(f"bad number syntax: {_go_quote(text)}", token.pos) from None
        if overflowed:
            raise self.error(f"integer overflow: {_go_quote(text)}", token.pos)
        if isinstance(value, int) and not -(1 << 63) <= value < 1 << 64:
            raise self.error(f"illegal number syntax: {_go_quote(text)}", token.pos)
        if isinstance(value, float) and math.isinf(value):
            raise self.error(f"illegal number syntax: {_go_quote(text)}", token.pos)
        return value  # an int above int64's range is a uint64: an error once it is used, as in Go


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}


def _unquote(quoted: str) -> str:
    """A Go interpreted string literal's value."""
    body, out, index = quoted[1:-1], [], 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        code = body[index + 1 : index + 2]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            index += 2
        elif code in ("x", "u", "U"):
            size = {"x": 2, "u": 4, "U": 8}[code]
            digits = body[index + 2 : index + 2 + size]
            if len(digits) != size or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise ValueError(quoted)
            out.append(chr(int(digits, 16)))
            index += 2 + size
        elif code and code in "01234567":
            digits = body[index + 1 : index + 4]
            if not re.fullmatch(r"[0-7]{3}", digits):
                raise ValueError(quoted)
            out.append(chr(int(digits, 8)))
            index += 4
        else:
            raise ValueError(quoted)
    return "".join(out)


# the tokens a command may start with
_COMMAND_STARTS = {
    "bool",
    "charconst",
    "dot",
    "field",
    "identifier",
    "number",
    "nil",
    "raw",
    "string",
    "variable",
    "lparen",
}


# ---- execution ----

MAX_TEMPLATE_DEPTH = 100  # Go's is 100000; Python's stack holds far fewer nested calls (fewer than 100
# where each level nests actions deeply)


def _is_empty(nodes: list[_Node]) -> bool:
    """Go's IsEmptyTree: nothing but white space."""
    return all(isinstance(node, _Text) and not node.text.strip(" \t\r\n") for node in nodes)


def _shown_node(node: _Node) -> _Node | None:
    """The node an error names: an action's or a branch's pipeline (a text is named by none)."""
    if isinstance(node, _Action | _Branch):
        return node.pipe
    return None if isinstance(node, _Text) else node


def _truth(value: Any) -> bool:
    """Go's template truth: false, 0, nil, and an empty string, slice or map are false."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, GoStruct):
        return True
    if isinstance(value, bool | int | float):
        return bool(value)
    return len(value) > 0


class _Exec:
    def __init__(self, template: Template, data: Any, escape: Callable[[Any], str] | None):
        self.template = template
        self.variables: list[tuple[str, Any]] = [("$", data)]
        self.escape = escape
        self.node: _Node | None = None
        self.out: list[str] = []
        self.executing = template.name  # the template whose actions run, which errors name
        self.depth = 0
        self.made = 0  # characters written or made by functions, up to MAX_OUTPUT
        self.steps = 0

    def error(self, message: str, node: _Node | None = None) -> GoTemplateError:
        return self.template.exec_error(message, node or self.node, self.executing)

    def step(self, node: _Node) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            message = f"the template takes more than {MAX_STEPS} steps (modelplane's limit)"
            raise self.error(message, _shown_node(node))

    def write(self, text: str, node: _Node) -> None:
        self.made_text(text, _shown_node(node))
        self.out.append(text)

    def made_text(self, text: Any, node: _Node | None) -> None:
        if isinstance(text, str):
            self.made += len(text)
            if self.made > MAX_OUTPUT:
                message = f"the template makes more than {MAX_OUTPUT} characters (modelplane's limit)"
                raise self.error(message, node)

    def walk(self, dot: Any, nodes: list[_Node]) -> None:
        for node in nodes:
            self.step(node)
            if isinstance(node, _Text):
                self.write(node.text, node)
            elif isinstance(node, _Action):
                value = self.pipeline(dot, node.pipe)
                if not node.pipe.declared:
                    self.print(value, node)
            elif isinstance(node, _Branch):
                self.branch(dot, node)
            elif isinstance(node, _TemplateCall):
                self.call_template(dot, node)
            elif isinstance(node, _Break):
                raise _BreakSignal
            elif isinstance(node, _Continue):
                raise _ContinueSignal

    def print(self, value: Any, node: _Node) -> None:
        if self.escape is not None:
            self.write(self.escape(value), node)
            return
        if isinstance(value, _Function):
            raise self.error(f"can't print {node} of type func", node)
        self.write("<no value>" if value is MISSING else go_value_string(value), node)

    def branch(self, dot: Any, node: _Branch) -> None:
        depth = len(self.variables)
        value = self.pipeline(dot, node.pipe, declare_range=node.keyword == "range")
        try:
            if node.keyword == "range":
                self.range(dot, node, value)
            elif _truth(value):
                self.walk(value if node.keyword == "with" else dot, node.body)
            elif node.otherwise is not None:
                self.walk(dot, node.otherwise)
        finally:
            del self.variables[depth:]

    def call_template(self, dot: Any, node: _TemplateCall) -> None:
        self.node = node
        nodes = self.template.trees.get(node.name)
        if nodes is None:
            raise self.error(f"template {_go_quote(node.name)} not defined")
        if self.depth == MAX_TEMPLATE_DEPTH:
            raise self.error(f"exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})")
        value = MISSING if node.pipe is None else self.pipeline(dot, node.pipe)
        saved = self.variables, self.executing
        self.variables, self.executing = [("$", value)], node.name  # a template inherits no variables
        self.depth += 1
        try:
            self.walk(value, nodes)
        finally:
            self.depth -= 1
            self.variables, self.executing = saved

    def range(self, dot: Any, node: _Branch, value: Any) -> None:
        if isinstance(value, dict):
            pairs = [(key, value[key]) for key in sorted(value)]
        elif isinstance(value, list | tuple):
            pairs = list(enumerate(value))
        elif value is MISSING or value is None:
            pairs = []
        else:
            # Said to be where the pipeline's evaluation ended, as Go says it.
            raise self.error(f"range can't iterate over {go_value_string(value)}")
        if not pairs:
            if node.otherwise is not None:
                self.walk(dot, node.otherwise)
            return
        depth = len(self.variables)
        for key, element in pairs:
            self.step(node)
            declared = node.pipe.declared
            if len(declared) == 1:
                self.set_variable(declared[0], element, node.pipe.is_assign)
            elif len(declared) == 2:
                self.set_variable(declared[0], key, node.pipe.is_assign)
                self.set_variable(declared[1], element, node.pipe.is_assign)
            try:
                self.walk(element, node.body)
            except _BreakSignal:
                break
            except _ContinueSignal:
                pass
            finally:
                del self.variables[depth + (0 if node.pipe.is_assign else len(declared)) :]

    def set_variable(self, name: str, value: Any, assign: bool) -> None:
        if assign:
            for index in range(len(self.variables) - 1, -1, -1):
                if self.variables[index][0] == name:
                    self.variables[index] = (name, value)
                    return
        self.variables.append((name, value))

    def variable(self, name: str) -> Any:
        for found, value in reversed(self.variables):
            if found == name:
                return value
        raise self.error(f"undefined variable: {name}")

    def pipeline(self, dot: Any, pipe: _Pipe, declare_range: bool = False) -> Any:
        self.node = pipe
        value: Any = MISSING
        for number, command in enumerate(pipe.commands):
            value = self.command(dot, command, value if number else _NO_FINAL)
        if value is None:
            value = MISSING  # a nil interface prints as `<no value>`, as Go unwraps it
        if pipe.declared and not declare_range:
            self.set_variable(pipe.declared[0], value, pipe.is_assign)
        return value

    def command(self, dot: Any, command: _Command, final: Any) -> Any:
        first = command.args[0]
        if isinstance(first, _Field):
            return self.field_chain(dot, dot, first, first.names, command.args, final)
        if isinstance(first, _Chain):
            receiver = self.arg_value(dot, first.node)
            return self.field_chain(dot, receiver, first, first.names, command.args, final)
        if isinstance(first, _Identifier):
            return self.call(dot, first, command.args, final, command)
        if isinstance(first, _Pipe):
            # Go says where it was last (the command before, in `{{1 | (2)}}`), not the parenthesis.
            self.not_a_function(command, final, at=self.node)
            return self.pipeline(dot, first)
        if isinstance(first, _Variable):
            self.node = first
            value = self.variable(first.name)
            if first.names:
                return self.field_chain(dot, value, first, first.names, command.args, final)
            self.not_a_function(command, final)
            return value
        self.node = first
        self.not_a_function(command, final)
        if isinstance(first, _Dot):
            return dot
        if isinstance(first, _Literal):
            if first.value is None:
                raise self.error("nil is not a command", first)
            return self.literal(first)
        raise self.error(f"can't evaluate command {first}", first)

    def not_a_function(self, command: _Command, final: Any, at: _Node | None = None) -> None:
        if len(command.args) > 1 or final is not _NO_FINAL:
            first = command.args[0]
            raise self.error(f"can't give argument to non-function {first}", at or first)

    def field_chain(
        self, dot: Any, receiver: Any, node: _Node, names: list[str], args: list[_Node], final: Any
    ) -> Any:
        # A field's mistakes are said to be at the field or variable; a chain's, where its receiver's
        # evaluation ended (`js` in `(js).name`), as Go's are.
        if not isinstance(node, _Chain):
            self.node = node
        in_map = False
        for name in names[:-1]:
            receiver, in_map = self.field(receiver, name, False, in_map), isinstance(receiver, dict)
        has_args = len(args) > 1 or final is not _NO_FINAL
        return self.field(receiver, names[-1], has_args, in_map)

    def field(self, receiver: Any, name: str, has_args: bool, in_map: bool) -> Any:
        """The field `name` of `receiver`; `in_map`: the receiver is a value of a map (an interface {})."""
        if receiver is MISSING:
            return MISSING
        if receiver is None:
            raise self.error(f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(receiver, dict):
            if has_args:
                raise self.error(f"{name} is not a method but has arguments")
            return receiver.get(name, MISSING)
        if isinstance(receiver, GoStruct):
            if name in receiver.fields:
                if has_args:
                    raise self.error(f"{name} has arguments but cannot be invoked as function")
                return receiver.fields[name]
            raise self.error(f"can't evaluate field {name} in type {receiver.type_name}")
        type_name = "interface {}" if in_map else go_type_name(receiver)
        raise self.error(f"can't evaluate field {name} in type {type_name}")

    def arg_value(self, dot: Any, node: _Node) -> Any:
        self.node = node
        if isinstance(node, _Dot):
            return dot
        if isinstance(node, _Literal):
            return self.literal(node)
        if isinstance(node, _Variable):
            value = self.variable(node.name)
            return self.field_chain(dot, value, node, node.names, [node], _NO_FINAL) if node.names else value
        if isinstance(node, _Field):
            return self.field_chain(dot, dot, node, node.names, [node], _NO_FINAL)
        if isinstance(node, _Chain):
            receiver = self.arg_value(dot, node.node)
            return self.field_chain(dot, receiver, node, node.names, [node], _NO_FINAL)
        if isinstance(node, _Pipe):
            return self.pipeline(dot, node)
        if isinstance(node, _Identifier):
            return self.call(dot, node, [node], _NO_FINAL)
        raise self.error(f"can't handle {node} for arg", node)

    def call(
        self, dot: Any, identifier: _Identifier, args: list[_Node], final: Any, command: _Node | None = None
    ) -> Any:
        function = self.template.functions[identifier.name]
        arg_nodes = args[1:]
        # As Go: the count first, then the arguments, each the place an error is said to be at until
        # the next (a call that succeeds leaves the last one as the place).
        self.node = identifier
        self.check_arity(identifier, function, len(arg_nodes) + (final is not _NO_FINAL))
        if function.lazy:  # and, or: stop at the first value that decides
            thunks = [lambda node=node: self.arg_value(dot, node) for node in arg_nodes]
            if final is not _NO_FINAL:
                thunks.append(lambda: final)
            return function.body(*thunks)
        values = [
            self.string_arg(dot, node) if function.takes_string and number == 0 else self.arg_value(dot, node)
            for number, node in enumerate(arg_nodes)
        ]
        if final is not _NO_FINAL:
            if function.takes_string and not arg_nodes:
                self.node = identifier
                final = self.as_string(final)
            values.append(final)
        self.step(identifier)
        try:
            result = function.body(*values)
        except _CallError as error:
            raise self.error(f"error calling {identifier.name}: {error}", command or identifier) from None
        self.made_text(result, identifier)
        return result

    def literal(self, node: _Literal) -> Any:
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1 << 63:
            raise self.error(f"{node} overflows int", node)  # a uint64 constant: Go's are ints
        return value

    def string_arg(self, dot: Any, node: _Node) -> str:
        """An argument for a Go string parameter: a string constant, or a value that is a string."""
        if isinstance(node, _Literal):
            self.node = node
            if isinstance(node.value, str):
                return node.value
            if node.value is None:
                raise self.error("cannot assign nil to string")
            raise self.error(f"expected string; found {node}")
        return self.as_string(self.arg_value(dot, node))

    def as_string(self, value: Any) -> str:
        if value is MISSING:
            raise self.error("invalid value; expected string")
        if not isinstance(value, str):
            type_name = "interface {}" if value is None else go_type_name(value)
            raise self.error(f"wrong type for value; expected string; got {type_name}")
        return value

    def check_arity(self, identifier: _Identifier, function: _Function, count: int) -> None:
        if function.variadic_from is None:
            if count != function.arity:
                raise self.error(
                    f"wrong number of args for {identifier.name}: want {function.arity} got {count}",
                    identifier,
                )
        elif count < function.variadic_from:
            raise self.error(
                f"wrong number of args for {identifier.name}: want at least {function.variadic_from} got {count}",
                identifier,
            )


_NO_FINAL: Any = object()  # a command that is first in its pipeline gets no value from before


# ---- functions ----


class _CallError(Exception):
    """A builtin function's error, said as `error calling NAME: ...`."""


@dataclass
class _Function:
    body: Callable[..., Any]
    arity: int = 0
    variadic_from: int | None = None  # at least this many arguments, any number more
    lazy: bool = False
    takes_string: bool = False  # the first parameter is a Go string, checked as Go checks it


def _and(*thunks: Callable[[], Any]) -> Any:
    value = MISSING
    for thunk in thunks:
        value = thunk()
        if not _truth(value):
            return value
    return value


def _or(*thunks: Callable[[], Any]) -> Any:
    value = MISSING
    for thunk in thunks:
        value = thunk()
        if _truth(value):
            return value
    return value


def _len(item: Any) -> int:
    if item is MISSING or item is None:
        raise _CallError("reflect: call of reflect.Value.Type on zero Value")
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, list | tuple | dict):
        return len(item)
    raise _CallError(f"len of type {go_type_name(item)}")


def _int_index(value: Any, cap: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if value is MISSING or value is None:
            raise _CallError("cannot index slice/array with nil")
        raise _CallError(f"cannot index slice/array with type {go_type_name(value)}")
    if value < 0 or value >= cap:
        raise _CallError(f"index out of range: {value}")
    return value


def _index(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise _CallError("index of untyped nil")
    for key in indexes:
        if isinstance(item, str):
            item = item.encode()[_int_index(key, len(item.encode()))]
        elif isinstance(item, list | tuple):
            item = item[_int_index(key, len(item))]
        elif isinstance(item, dict):
            if key is MISSING or key is None:
                raise _CallError("value is nil; should be string")
            if not isinstance(key, str):
                raise _CallError(f"value has type {go_type_name(key)}; should be string")
            item = item.get(key)
        elif item is None or item is MISSING:
            raise _CallError("index of nil pointer")
        else:
            raise _CallError(f"can't index item of type {go_type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise _CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise _CallError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise _CallError("cannot 3-index slice a string")
        size = len(item.encode())
    elif isinstance(item, list | tuple):
        size = len(item)
    else:
        raise _CallError(f"can't slice item of type {go_type_name(item)}")
    bounds = [_int_index(index, size + 1) for index in indexes]
    for first, second in zip(bounds, bounds[1:], strict=False):
        if second < first:
            raise _CallError(f"invalid slice index: {first} > {second}")
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else size
    if isinstance(item, str):
        return item.encode()[start:end].decode(errors="replace")
    return list(item[start:end])


_BASIC_KINDS = {"bool": "bool", "int": "int", "int64": "int", "float64": "float", "string": "string"}


def _basic_kind(value: Any) -> str:
    """What Go's comparison functions compare a value as: nil, bool, int, float, string, or other."""
    if value is MISSING or value is None:
        return "nil"
    return _BASIC_KINDS.get(go_type_name(value), "other")


def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise _CallError("missing argument for comparison")
    kind = _basic_kind(first)
    for other in others:
        other_kind = _basic_kind(other)
        if kind != other_kind:
            if "nil" not in (kind, other_kind):
                raise _CallError("incompatible types for comparison")
            continue  # a nil against a value: not equal
        if kind == "nil":
            return True
        if kind == "other":
            raise _CallError(f"non-comparable type {go_value_string(other)}: {go_type_name(other)}")
        if first == other:
            return True
    return False


def _ne(first: Any, second: Any) -> bool:
    return not _eq(first, second)


def _less(first: Any, second: Any) -> bool:
    kind, other_kind = _basic_kind(first), _basic_kind(second)
    if kind in ("other", "nil") or other_kind in ("other", "nil"):
        raise _CallError("invalid type for comparison")
    if kind != other_kind:
        raise _CallError("incompatible types for comparison")
    if kind == "bool":  # a basic kind, which Go orders not (after the kinds are found to differ)
        raise _CallError("invalid type for comparison")
    return first < second


def _le(first: Any, second: Any) -> bool:
    return _less(first, second) or _eq(first, second)


def _html(*args: Any) -> str:
    from modelplane.api.go_format import html_escape

    return html_escape(_sprint_args(args))


def _js(*args: Any) -> str:
    out = []
    for char in _sprint_args(args):
        if char in "\\'\"":
            out.append("\\" + char)
        elif char in "<>&=" or ord(char) < 0x20 or not char.isprintable():
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_sprint_args(args), safe="-_.~")


def _sprint_args(args: tuple) -> str:
    """What html, js and urlquery escape: one string as it is, else the arguments as print prints them,
    a nil or missing one as the text `<no value>` (Go's escapers print the invalid value they get)."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return go_sprint(["<no value>" if arg is MISSING or arg is None else arg for arg in args])


def _printf(format_text: str, *args: Any) -> str:
    return go_sprintf(format_text, [None if arg is MISSING else arg for arg in args])


def _not(value: Any) -> bool:
    return not _truth(value)


BUILTINS: dict[str, _Function] = {
    "and": _Function(_and, variadic_from=1, lazy=True),
    "or": _Function(_or, variadic_from=1, lazy=True),
    "not": _Function(_not, arity=1),
    "len": _Function(_len, arity=1),
    "index": _Function(_index, variadic_from=1),
    "slice": _Function(_slice, variadic_from=1),
    "print": _Function(lambda *args: go_sprint([None if a is MISSING else a for a in args]), variadic_from=0),
    "println": _Function(
        lambda *args: go_sprintln([None if a is MISSING else a for a in args]), variadic_from=0
    ),
    "printf": _Function(_printf, variadic_from=1, takes_string=True),
    "eq": _Function(_eq, variadic_from=1),
    "ne": _Function(_ne, arity=2),
    "lt": _Function(_less, arity=2),
    "le": _Function(_le, arity=2),
    "gt": _Function(lambda first, second: not _le(first, second), arity=2),
    "ge": _Function(lambda first, second: not _less(first, second), arity=2),
    "html": _Function(_html, variadic_from=0),
    "js": _Function(_js, variadic_from=0),
    "urlquery": _Function(_urlquery, variadic_from=0),
}


def _exists(item: Any, *keys: Any) -> bool:
    """kubectl's `exists`: whether the keys (or indexes) lead to a value."""
    for key in keys:
        if (
            isinstance(item, dict)
            and key in item
            or isinstance(item, list)
            and isinstance(key, int)
            and 0 <= key < len(item)
        ):
            item = item[key]
        else:
            return False
    return True


def _base64decode(text: str) -> str:
    """kubectl's base64decode, in its words."""
    try:
        return go_base64_decode(text).decode(errors="replace")
    except Base64Error as error:
        raise _CallError(f"base64 decode failed: {error}") from None


KUBECTL_FUNCTIONS: dict[str, _Function] = {
    **BUILTINS,
    "exists": _Function(_exists, variadic_from=1),
    "base64decode": _Function(_base64decode, arity=1, takes_string=True),
}


# ---- the template ----


class Template:
    """A parsed template: `Template("output", "{{.metadata.name}}").execute(data)`."""

    def __init__(self, name: str, text: str, functions: dict[str, _Function] | None = None):
        self.name = name
        self.text = text
        self.functions = BUILTINS if functions is None else functions
        self.trees = _Parser(self, _Lexer(self).run(), self.functions).parse()

    def _line(self, pos: int) -> int:
        return 1 + self.text.count("\n", 0, pos)

    def parse_error(self, message: str, pos: int) -> GoTemplateError:
        return GoTemplateError(f"template: {self.name}:{self._line(pos)}: {message}")

    def exec_error(self, message: str, node: _Node | None, executing: str) -> GoTemplateError:
        """Go's words: the place in the text (named for the template parsed), and the template executing."""
        if node is None:
            return GoTemplateError(f"template: {executing}: executing {_go_quote(executing)}: {message}")
        pos = node.pos
        line_start = self.text.rfind("\n", 0, pos)
        column = pos if line_start < 0 else pos - line_start - 1
        return GoTemplateError(
            f"template: {self.name}:{self._line(pos)}:{column}: executing {_go_quote(executing)} at <{node}>: "
            f"{message}"
        )

    def execute(self, data: Any, escape: Callable[[Any], str] | None = None) -> str:
        """The template's text with `data` as dot; `escape`, if given, writes each action's value (as
        html/template's escaping does)."""
        run = _Exec(self, data, escape)
        try:
            run.walk(data, self.trees[self.name])
        except RecursionError:  # templates nested deeper than Python's stack, short of the limit
            raise self.exec_error("exceeded maximum template depth", None, self.name) from None
        return "".join(run.out)
