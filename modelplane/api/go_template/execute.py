"""Executing a parsed template on data: Go's text/template semantics and error messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .fmt import go_quote, go_type_name, go_value_string
from .functions import CallError, Function
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
from .values import MISSING, GoStruct, GoTemplateError, truth

if TYPE_CHECKING:
    from .template import Template

# Bounds Go does not have (or has far higher), so that a template cannot exhaust Python's stack, the
# memory or the time of whoever runs it (the CLI, the controller rendering a runtime's containers).
MAX_OUTPUT = 64 * 2**20  # characters written, and made by functions (`printf`), in one execution
MAX_STEPS = 1_000_000  # actions, texts and range iterations executed in one execution
MAX_TEMPLATE_DEPTH = 100  # Go's is 100000; Python's stack holds far fewer nested calls (fewer than 100
# where each level nests actions deeply)


class BreakSignal(Exception):
    """`{{break}}`: leaves the innermost range."""


class ContinueSignal(Exception):
    """`{{continue}}`: goes on with the innermost range's next item."""


def _shown_node(node: Node) -> Node | None:
    """The node an error names: an action's or a branch's pipeline (a text is named by none)."""
    if isinstance(node, Action | Branch):
        return node.pipe
    return None if isinstance(node, Text) else node


class Execution:
    def __init__(self, template: Template, data: Any, escape: Callable[[Any], str] | None):
        self.template = template
        self.variables: list[tuple[str, Any]] = [("$", data)]
        self.escape = escape
        self.node: Node | None = None
        self.out: list[str] = []
        self.executing = template.name  # the template whose actions run, which errors name
        self.depth = 0
        self.made = 0  # characters written or made by functions, up to MAX_OUTPUT
        self.steps = 0

    def error(self, message: str, node: Node | None = None) -> GoTemplateError:
        return self.template.exec_error(message, node or self.node, self.executing)

    def step(self, node: Node) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            message = f"the template takes more than {MAX_STEPS} steps (modelplane's limit)"
            raise self.error(message, _shown_node(node))

    def write(self, text: str, node: Node) -> None:
        self.made_text(text, _shown_node(node))
        self.out.append(text)

    def made_text(self, text: Any, node: Node | None) -> None:
        if isinstance(text, str):
            self.made += len(text)
            if self.made > MAX_OUTPUT:
                message = f"the template makes more than {MAX_OUTPUT} characters (modelplane's limit)"
                raise self.error(message, node)

    def walk(self, dot: Any, nodes: list[Node]) -> None:
        for node in nodes:
            self.step(node)
            if isinstance(node, Text):
                self.write(node.text, node)
            elif isinstance(node, Action):
                value = self.pipeline(dot, node.pipe)
                if not node.pipe.declared:
                    self.print(value, node)
            elif isinstance(node, Branch):
                self.branch(dot, node)
            elif isinstance(node, TemplateCall):
                self.call_template(dot, node)
            elif isinstance(node, Break):
                raise BreakSignal
            elif isinstance(node, Continue):
                raise ContinueSignal

    def print(self, value: Any, node: Node) -> None:
        if self.escape is not None:
            self.write(self.escape(value), node)
            return
        if isinstance(value, Function):
            raise self.error(f"can't print {node} of type func", node)
        self.write("<no value>" if value is MISSING else go_value_string(value), node)

    def branch(self, dot: Any, node: Branch) -> None:
        depth = len(self.variables)
        value = self.pipeline(dot, node.pipe, declare_range=node.keyword == "range")
        try:
            if node.keyword == "range":
                self.range(dot, node, value)
            elif truth(value):
                self.walk(value if node.keyword == "with" else dot, node.body)
            elif node.otherwise is not None:
                self.walk(dot, node.otherwise)
        finally:
            del self.variables[depth:]

    def call_template(self, dot: Any, node: TemplateCall) -> None:
        self.node = node
        nodes = self.template.trees.get(node.name)
        if nodes is None:
            raise self.error(f"template {go_quote(node.name)} not defined")
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

    def range(self, dot: Any, node: Branch, value: Any) -> None:
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
            except BreakSignal:
                break
            except ContinueSignal:
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

    def pipeline(self, dot: Any, pipe: Pipe, declare_range: bool = False) -> Any:
        self.node = pipe
        value: Any = MISSING
        for number, command in enumerate(pipe.commands):
            value = self.command(dot, command, value if number else _NO_FINAL)
        if value is None:
            value = MISSING  # a nil interface prints as `<no value>`, as Go unwraps it
        if pipe.declared and not declare_range:
            self.set_variable(pipe.declared[0], value, pipe.is_assign)
        return value

    def command(self, dot: Any, command: Command, final: Any) -> Any:
        first = command.args[0]
        if isinstance(first, Field):
            return self.field_chain(dot, dot, first, first.names, command.args, final)
        if isinstance(first, Chain):
            receiver = self.arg_value(dot, first.node)
            return self.field_chain(dot, receiver, first, first.names, command.args, final)
        if isinstance(first, Identifier):
            return self.call(dot, first, command.args, final, command)
        if isinstance(first, Pipe):
            # Go says where it was last (the command before, in `{{1 | (2)}}`), not the parenthesis.
            self.not_a_function(command, final, at=self.node)
            return self.pipeline(dot, first)
        if isinstance(first, Variable):
            self.node = first
            value = self.variable(first.name)
            if first.names:
                return self.field_chain(dot, value, first, first.names, command.args, final)
            self.not_a_function(command, final)
            return value
        self.node = first
        self.not_a_function(command, final)
        if isinstance(first, Dot):
            return dot
        if isinstance(first, Literal):
            if first.value is None:
                raise self.error("nil is not a command", first)
            return self.literal(first)
        raise self.error(f"can't evaluate command {first}", first)

    def not_a_function(self, command: Command, final: Any, at: Node | None = None) -> None:
        if len(command.args) > 1 or final is not _NO_FINAL:
            first = command.args[0]
            raise self.error(f"can't give argument to non-function {first}", at or first)

    def field_chain(
        self, dot: Any, receiver: Any, node: Node, names: list[str], args: list[Node], final: Any
    ) -> Any:
        # A field's mistakes are said to be at the field or variable; a chain's, where its receiver's
        # evaluation ended (`js` in `(js).name`), as Go's are.
        if not isinstance(node, Chain):
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

    def arg_value(self, dot: Any, node: Node) -> Any:
        self.node = node
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Literal):
            return self.literal(node)
        if isinstance(node, Variable):
            value = self.variable(node.name)
            return self.field_chain(dot, value, node, node.names, [node], _NO_FINAL) if node.names else value
        if isinstance(node, Field):
            return self.field_chain(dot, dot, node, node.names, [node], _NO_FINAL)
        if isinstance(node, Chain):
            receiver = self.arg_value(dot, node.node)
            return self.field_chain(dot, receiver, node, node.names, [node], _NO_FINAL)
        if isinstance(node, Pipe):
            return self.pipeline(dot, node)
        if isinstance(node, Identifier):
            return self.call(dot, node, [node], _NO_FINAL)
        raise self.error(f"can't handle {node} for arg", node)

    def call(
        self, dot: Any, identifier: Identifier, args: list[Node], final: Any, command: Node | None = None
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
        except CallError as error:
            raise self.error(f"error calling {identifier.name}: {error}", command or identifier) from None
        self.made_text(result, identifier)
        return result

    def literal(self, node: Literal) -> Any:
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1 << 63:
            raise self.error(f"{node} overflows int", node)  # a uint64 constant: Go's are ints
        return value

    def string_arg(self, dot: Any, node: Node) -> str:
        """An argument for a Go string parameter: a string constant, or a value that is a string."""
        if isinstance(node, Literal):
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

    def check_arity(self, identifier: Identifier, function: Function, count: int) -> None:
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
