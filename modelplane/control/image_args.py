"""A container's arguments read as a server reads them: flags with values, and words.

`--model_name=iris`, `--model_name iris` and `--model-name=iris` are the same flag (`model_name`):
KServe's servers spell flags with `_`, Triton and TorchServe with `-`. A flag followed by a word that
is not a flag takes it as its value; one followed by another flag (`--start`) has none.
"""

from __future__ import annotations

from dataclasses import dataclass

_TRUE = ("y", "yes", "t", "true", "on", "1")
_FALSE = ("n", "no", "f", "false", "off", "0")


@dataclass(frozen=True)
class Flag:
    name: str  # lower case, `_` for `-`, without the leading dashes
    value: str | None
    text: str  # as written, for messages

    def truth(self) -> bool | None:
        """The flag as a boolean (a bare flag is True), as Python's `strtobool` reads it; None if
        the value is not a boolean."""
        if self.value is None:
            return True
        value = self.value.lower()
        return True if value in _TRUE else False if value in _FALSE else None


@dataclass(frozen=True)
class ParsedArgs:
    flags: tuple[Flag, ...]
    words: tuple[str, ...]  # arguments that are neither flags nor their values

    def value(self, *names: str) -> str | None:
        """The value of the last of these flags that is given (later flags win, as in argparse)."""
        found = [flag for flag in self.flags if flag.name in names]
        return found[-1].value if found else None

    def without(self, *names: str) -> tuple[Flag, ...]:
        return tuple(flag for flag in self.flags if flag.name not in names)


def parse_args(args: list[str]) -> ParsedArgs:
    flags: list[Flag] = []
    words: list[str] = []
    position = 0
    while position < len(args):
        part = args[position]
        position += 1
        if not part.startswith("-") or part in ("-", "--"):
            words.append(part)
            continue
        head, equals, value = part.partition("=")
        name = head.lstrip("-").replace("-", "_").lower()
        if equals:
            flags.append(Flag(name, value, part))
        elif position < len(args) and not args[position].startswith("-"):
            flags.append(Flag(name, args[position], f"{part} {args[position]}"))
            position += 1
        else:
            flags.append(Flag(name, None, part))
    return ParsedArgs(tuple(flags), tuple(words))


def is_placeholder(value: str | None) -> bool:
    """A `{{.Labels.x}}`-style value not filled in yet (a runtime read on its own)."""
    return value is not None and "{{" in value
