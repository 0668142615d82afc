"""The parser: tokens to the trees of a template and of the templates it defines."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from .fmt import go_quote
from .lex import Token
from .nodes import (
    Action,
    Branch,
    Break,
    Chain,
    Command,
    Continue,
    Dot,
    Field,
    Identifier,
    Literal,
    Node,
    Pipe,
    TemplateCall,
    Text,
    Variable,
)
from .values import GoTemplateError

if TYPE_CHECKING:
    from .template import Template

MAX_NESTING = 100  # `{{if}}`, `{{range}}`, `{{with}}` and parentheses inside each other


class Parser:
    def __init__(self, template: Template, tokens: list[Token], functions: dict[str, Callable]):
        self.template = template
        self.tokens = tokens
        self.index = 0
        self.functions = functions
        self.variables: list[str] = ["$"]
        self.range_depth = 0
        self.trees: dict[str, list[Node]] = {}
        self.nesting = 0

    def nested(self, pos: int) -> None:
        """One level deeper; an error past MAX_NESTING (Go's is 10000, for parentheses only)."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error(f"max expression depth exceeded (modelplane's limit: {MAX_NESTING})", pos)

    def error(self, message: str, pos: int | None = None) -> GoTemplateError:
        return self.template.parse_error(message, self.peek().pos if pos is None else pos)

    def peek(self) -> Token:
        token = self.tokens[self.index]
        if token.error is not None:
            raise token.error
        return token

    def next(self) -> Token:
        token = self.tokens[self.index]
        if token.error is not None:
            raise token.error
        self.index += 1
        return token

    def next_non_space(self) -> Token:
        token = self.next()
        while token.kind == "space":
            token = self.next()
        return token

    def peek_non_space(self) -> Token:
        index = self.index
        while self.tokens[index].kind == "space":
            index += 1
        if self.tokens[index].error is not None:
            raise self.tokens[index].error
        return self.tokens[index]

    def parse(self) -> dict[str, list[Node]]:
        """Each template the text defines, by name, the text outside the definitions as the template's own."""
        nodes, ending = self.item_list(top=True)
        self.add_tree(self.template.name, nodes)
        return self.trees

    def add_tree(self, name: str, nodes: list[Node]) -> None:
        """Go's rule: an empty definition does not replace one with content, and two with content clash."""
        if name not in self.trees or is_empty(self.trees[name]):
            self.trees[name] = nodes
        elif not is_empty(nodes):
            raise self.error(
                f"template: multiple definition of template {go_quote(name)}",
                self.tokens[self.index - 1].pos,
            )

    def nested_tree(self, context: str) -> list[Node]:
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

    def template_name(self, token: Token, context: str) -> str:
        if token.kind not in ("string", "raw"):
            raise self.error(f"unexpected {token} in {context}", token.pos)
        if token.kind == "raw":
            return token.value[1:-1]
        try:
            return _unquote(token.value)
        except ValueError:
            raise self.error("invalid syntax", token.pos) from None

    def template_call(self, keyword: Token) -> TemplateCall:
        context = f"{keyword.value} clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        if keyword.value == "block":
            pipe = self.pipeline(context, "right")
            self.add_tree(name, self.nested_tree(context))
            return TemplateCall(token.pos, name, pipe)
        if self.peek_non_space().kind == "right":
            self.next_non_space()
            return TemplateCall(token.pos, name, None)
        return TemplateCall(token.pos, name, self.pipeline(context, "right"))

    def item_list(self, top: bool = False) -> tuple[list[Node], str]:
        """Nodes up to `{{end}}` or `{{else}}` (which it returns), or to the end of the text at the top."""
        nodes: list[Node] = []
        while True:
            token = self.next()
            if token.kind == "eof":
                if top:
                    return nodes, "eof"
                raise self.error("unexpected EOF", token.pos)
            if token.kind == "text":
                nodes.append(Text(token.pos, token.value))
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

    def action(self) -> Node:
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
                return Break(token.pos) if token.value == "break" else Continue(token.pos)
            return self.template_call(token)
        pipe = self.pipeline("command", "right")
        return Action(token.pos, pipe)

    def branch(self, keyword: Token) -> Branch:
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
        return Branch(keyword.pos, keyword.value, pipe, body, otherwise)

    def pipeline(self, context: str, end: str) -> Pipe:
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
        commands: list[Command] = []
        while True:
            token = self.peek_non_space()
            if token.kind == end:
                self.next_non_space()
                if not commands:
                    raise self.error(f"missing value for {context}", token.pos)
                # Only the first command may begin with a value that is not run (Go's checkPipeline).
                for stage, later in enumerate(commands[1:], start=2):
                    if isinstance(later.args[0], Literal | Dot):
                        raise self.error(f"non executable command in pipeline stage {stage}", token.pos)
                return Pipe(start.pos, declared, is_assign, commands)
            if token.kind in ("eof",):
                raise self.error("unclosed action", token.pos)
            if token.kind not in _COMMAND_STARTS:
                raise self.error(f"unexpected {token} in {context}", token.pos)
            commands.append(self.command())
            if self.peek_non_space().kind == "pipe":
                self.next_non_space()  # a pipe before the end is no command more, as Go takes it

    def command(self) -> Command:
        start = self.peek_non_space()
        args: list[Node] = []
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
        return Command(start.pos, args)

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind == "field":
            chain_pos = self.peek().pos
            names = []
            while self.peek().kind == "field":
                names.append(self.next().value[1:])
            if isinstance(node, Field):
                return Field(chain_pos, node.names + names)
            if isinstance(node, Variable):
                return Variable(chain_pos, node.name, node.names + names)
            if isinstance(node, Literal | Dot) and not isinstance(node, Pipe):
                raise self.error(f"unexpected . after term {str(node)!r}", chain_pos)
            return Chain(chain_pos, node, names)
        return node

    def term(self) -> Node | None:
        token = self.next()
        kind = token.kind
        if kind == "identifier":
            if token.value not in self.functions:
                raise self.error(f'function "{token.value}" not defined', token.pos)
            return Identifier(token.pos, token.value)
        if kind == "dot":
            return Dot(token.pos)
        if kind == "nil":
            return Literal(token.pos, None, "nil")
        if kind == "variable":
            if token.value not in self.variables:
                raise self.error(f'undefined variable "{token.value}"', token.pos)
            return Variable(token.pos, token.value)
        if kind == "field":
            return Field(token.pos, [token.value[1:]])
        if kind == "bool":
            return Literal(token.pos, token.value == "true", token.value)
        if kind in ("charconst", "number"):
            return Literal(token.pos, self.number(token), token.value)
        if kind == "lparen":
            self.nested(token.pos)
            pipe = self.pipeline("parenthesized pipeline", "rparen")
            self.nesting -= 1
            return pipe
        if kind in ("string", "raw"):
            return Literal(token.pos, self.string(token), token.value)
        self.index -= 1
        return None

    def string(self, token: Token) -> str:
        if token.kind == "raw":
            return token.value[1:-1]
        try:
            return _unquote(token.value)
        except ValueError:
            raise self.error(f"invalid syntax: {token.value}", token.pos) from None

    def number(self, token: Token) -> int | float:
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
            raise self.error(f"bad number syntax: {go_quote(text)}", token.pos) from None
        if overflowed:
            raise self.error(f"integer overflow: {go_quote(text)}", token.pos)
        if isinstance(value, int) and not -(1 << 63) <= value < 1 << 64:
            raise self.error(f"illegal number syntax: {go_quote(text)}", token.pos)
        if isinstance(value, float) and math.isinf(value):
            raise self.error(f"illegal number syntax: {go_quote(text)}", token.pos)
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


def is_empty(nodes: list[Node]) -> bool:
    """Go's IsEmptyTree: nothing but white space."""
    return all(isinstance(node, Text) and not node.text.strip(" \t\r\n") for node in nodes)
