"""A parsed template, executed on data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .execute import Execution
from .fmt import go_quote
from .functions import BUILTINS, Function
from .lex import Lexer
from .nodes import Node
from .parse import Parser
from .values import GoTemplateError


class Template:
    """A parsed template: `Template("output", "{{.metadata.name}}").execute(data)`."""

    def __init__(self, name: str, text: str, functions: dict[str, Function] | None = None):
        self.name = name
        self.text = text
        self.functions = BUILTINS if functions is None else functions
        self.trees = Parser(self, Lexer(self).run(), self.functions).parse()

    def _line(self, pos: int) -> int:
        return 1 + self.text.count("\n", 0, pos)

    def parse_error(self, message: str, pos: int) -> GoTemplateError:
        return GoTemplateError(f"template: {self.name}:{self._line(pos)}: {message}")

    def exec_error(self, message: str, node: Node | None, executing: str) -> GoTemplateError:
        """Go's words: the place in the text (named for the template parsed), and the template executing."""
        if node is None:
            return GoTemplateError(f"template: {executing}: executing {go_quote(executing)}: {message}")
        pos = node.pos
        line_start = self.text.rfind("\n", 0, pos)
        column = pos if line_start < 0 else pos - line_start - 1
        return GoTemplateError(
            f"template: {self.name}:{self._line(pos)}:{column}: executing {go_quote(executing)} at <{node}>: "
            f"{message}"
        )

    def execute(self, data: Any, escape: Callable[[Any], str] | None = None) -> str:
        """The template's text with `data` as dot; `escape`, if given, writes each action's value (as
        html/template's escaping does)."""
        run = Execution(self, data, escape)
        try:
            run.walk(data, self.trees[self.name])
        except RecursionError:  # templates nested deeper than Python's stack, short of the limit
            raise self.exec_error("exceeded maximum template depth", None, self.name) from None
        return "".join(run.out)
