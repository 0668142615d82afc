"""The parse tree: a template is a list of nodes, and each action's pipeline a tree of commands."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .fmt import go_quote


@dataclass
class Node:
    pos: int


@dataclass
class Text(Node):
    text: str


@dataclass
class Field(Node):
    names: list[str]

    def __str__(self) -> str:
        return "".join("." + name for name in self.names)


@dataclass
class Variable(Node):
    name: str
    names: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.name + "".join("." + name for name in self.names)


@dataclass
class Dot(Node):
    def __str__(self) -> str:
        return "."


@dataclass
class Identifier(Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass
class Literal(Node):
    value: Any
    source: str

    def __str__(self) -> str:
        return self.source


@dataclass
class Chain(Node):
    node: Node
    names: list[str]

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, Pipe) else str(self.node)
        return inner + "".join("." + name for name in self.names)


@dataclass
class Command(Node):
    args: list[Node]

    def __str__(self) -> str:
        return " ".join(f"({arg})" if isinstance(arg, Pipe) else str(arg) for arg in self.args)


@dataclass
class Pipe(Node):
    declared: list[str]
    is_assign: bool
    commands: list[Command]

    def __str__(self) -> str:
        head = ""
        if self.declared:
            head = ", ".join(self.declared) + (" = " if self.is_assign else " := ")
        return head + " | ".join(str(command) for command in self.commands)


@dataclass
class Action(Node):
    pipe: Pipe


@dataclass
class Branch(Node):
    keyword: str  # if, range, with
    pipe: Pipe
    body: list[Node]
    otherwise: list[Node] | None


@dataclass
class TemplateCall(Node):
    name: str
    pipe: Pipe | None

    def __str__(self) -> str:
        pipe = "" if self.pipe is None else f" {self.pipe}"
        return f"{{{{template {go_quote(self.name)}{pipe}}}}}"


@dataclass
class Break(Node):
    pass


@dataclass
class Continue(Node):
    pass
