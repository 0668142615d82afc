"""Go's fmt, for the print functions of Go templates: Sprint, Sprintln and
Sprintf with their verbs (`%v %s %q %d %x %X %o %b %c %U %e %f %g %t %T`, flags `+-# 0`, width and
precision), over Python values as Go templates see them (a dict is a map, a list a slice, None nil);
a verb that does not fit its value is shown as Go shows it (`%!d(string=x)`)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from .values import GoStruct


class GoInt64(int):
    """An int that Go holds as int64: what kubectl's JSON decoding makes of a whole number."""


def go_type_name(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, GoStruct):
        return value.type_name
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, GoInt64):
        return "int64"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    return type(value).__name__


def go_value_string(value: Any) -> str:
    """`value` as `%v` prints it."""
    return _format(value, _Spec("v"))


def go_sprint(args: list[Any]) -> str:
    """fmt.Sprint: a space between two operands when neither is a string."""
    out = []
    for index, arg in enumerate(args):
        if index and not isinstance(arg, str) and not isinstance(args[index - 1], str):
            out.append(" ")
        out.append(go_value_string(arg))
    return "".join(out)


def go_sprintln(args: list[Any]) -> str:
    return " ".join(go_value_string(arg) for arg in args) + "\n"


class _Spec:
    def __init__(self, verb: str, flags: str = "", width: int | None = None, precision: int | None = None):
        self.verb = verb
        self.flags = flags
        self.width = width
        self.precision = precision

    def pad(self, text: str, numeric: bool = False) -> str:
        if self.width is None or len(text) >= self.width:
            return text
        if "-" in self.flags:
            return text.ljust(self.width)
        if "0" in self.flags:
            if numeric and text[:1] in "+- ":
                return text[0] + text[1:].rjust(self.width - 1, "0")
            return text.rjust(self.width, "0")
        return text.rjust(self.width)


def go_sprintf(format_text: str, args: list[Any]) -> str:
    """fmt.Sprintf, read as Go's doPrintf reads the format: flags, `[n]` argument indexes, `*` widths
    and precisions taken from the arguments, and Go's `%!` words for what does not fit."""
    return _Printf(format_text, args).run()


class _Printf:
    def __init__(self, format_text: str, args: list[Any]):
        self.format = format_text
        self.args = args
        self.out: list[str] = []
        self.arg_num = 0  # the argument the next verb prints
        self.reordered = False  # an explicit index was used: extra arguments are not reported
        self.good_arg_num = True

    def run(self) -> str:
        text, end, index = self.format, len(self.format), 0
        while index < end:
            percent = text.find("%", index)
            if percent < 0:
                self.out.append(text[index:])
                break
            self.out.append(text[index:percent])
            index = self.verb(percent + 1)
        if not self.reordered and self.arg_num < len(self.args):
            extra = ", ".join(
                "<nil>" if arg is None else f"{go_type_name(arg)}={go_value_string(arg)}"
                for arg in self.args[self.arg_num :]
            )
            self.out.append(f"%!(EXTRA {extra})")
        return "".join(self.out)

    def verb(self, index: int) -> int:
        """Formats the verb whose flags start at `index`; where the format goes on."""
        text, end = self.format, len(self.format)
        self.good_arg_num = True
        flags = ""
        while index < end and text[index] in "#0+- ":
            flags += text[index]
            index += 1
        index, after_index = self.arg_index(index)
        width: int | None = None
        if index < end and text[index] == "*":
            index += 1
            width = self.int_arg()
            if width is None:
                self.out.append("%!(BADWIDTH)")
            elif width < 0:  # a negative width pads on the right
                width, flags = -width, flags.replace("0", "") + "-"
            after_index = False
        else:
            width, index = _parse_number(text, index)
            if after_index and width is not None:  # "%[3]2d"
                self.good_arg_num = False
        precision: int | None = None
        if index + 1 < end and text[index] == ".":
            index += 1
            if after_index:  # "%[3].2d"
                self.good_arg_num = False
            index, after_index = self.arg_index(index)
            if index < end and text[index] == "*":
                index += 1
                precision = self.int_arg()
                if precision is not None and precision < 0:
                    precision = None
                if precision is None:
                    self.out.append("%!(BADPREC)")
                after_index = False
            else:
                precision, index = _parse_number(text, index)
                precision = precision or 0
        if not after_index:
            index, after_index = self.arg_index(index)
        if index >= end:
            self.out.append("%!(NOVERB)")
            return end
        verb = text[index]
        if verb == "%":  # takes no argument, and ignores width and precision
            self.out.append("%")
        elif not self.good_arg_num:
            self.out.append(f"%!{verb}(BADINDEX)")
        elif self.arg_num >= len(self.args):
            self.out.append(f"%!{verb}(MISSING)")
        else:
            value = self.args[self.arg_num]
            if verb == "v":  # Go reads `+` and `#` with %v as other modes, never as a sign or a prefix
                spec = _Spec(verb, flags.replace("+", "").replace("#", ""), width, precision)
                self.out.append(_go_syntax(value, spec) if "#" in flags else _format(value, spec))
            else:
                self.out.append(_format(value, _Spec(verb, flags, width, precision)))
            self.arg_num += 1
        return index + 1

    def arg_index(self, index: int) -> tuple[int, bool]:
        """Reads an explicit argument index, `[n]` (one-based), at `index`: where the format goes on,
        and whether there was one."""
        text = self.format
        if index >= len(text) or text[index] != "[":
            return index, False
        self.reordered = True
        if len(text) - index < 3:  # no room for `[n]`
            self.good_arg_num = False
            return index + 1, False
        close = text.find("]", index + 1)
        if close < 0:
            self.good_arg_num = False
            return index + 1, False
        number, after = _parse_number(text, index + 1, close)
        if number is not None and after == close and 1 <= number <= len(self.args):
            self.arg_num = number - 1
            return close + 1, True
        self.good_arg_num = False
        return close + 1, number is not None and after == close

    def int_arg(self) -> int | None:
        """The argument a `*` stands for, if it is an int (Go's intFromArg); the next one follows it."""
        if self.arg_num >= len(self.args):
            return None
        value = self.args[self.arg_num]
        self.arg_num += 1
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 1_000_000:
            return None
        return value


def _parse_number(text: str, index: int, end: int | None = None) -> tuple[int | None, int]:
    """The decimal number at `index` (None if none, or one too large), and where it ends (Go's parsenum)."""
    end = len(text) if end is None else end
    number, after = None, index
    while after < end and text[after].isdigit() and text[after].isascii():
        number = (number or 0) * 10 + int(text[after])
        if number > 1_000_000:
            return None, end
        after += 1
    return number, after


def _bad(value: Any, spec: _Spec) -> str:
    """Go's `%!verb(type=value)`, the value printed with %v and the verb's own flags, width and precision."""
    if value is None:
        return f"%!{spec.verb}(<nil>)"
    as_v = _Spec("v", spec.flags, spec.width, spec.precision)
    return f"%!{spec.verb}({go_type_name(value)}={_format(value, as_v)})"


def _format(value: Any, spec: _Spec, *, nested: bool = False) -> str:
    """`value` as Go's fmt prints it; `nested`: inside a map, slice or struct, where a nil is `<nil>`
    whatever the verb, width and precision."""
    verb = spec.verb
    if verb == "T":
        return spec.pad(go_type_name(value))
    if value is None:  # inside a container Go writes it as it is, unpadded
        return "<nil>" if nested else spec.pad("<nil>") if verb == "v" else _bad(value, spec)
    if isinstance(value, bool):
        return spec.pad("true" if value else "false") if verb in "vt" else _bad(value, spec)
    if isinstance(value, int):
        return _format_int(value, spec)
    if isinstance(value, float):
        return _format_float(value, spec)
    if isinstance(value, str):
        return _format_string(value, spec)
    if isinstance(value, dict):
        pairs = (
            f"{_format(key, spec, nested=True)}:{_format(value[key], spec, nested=True)}"
            for key in sorted(value)
        )
        return "map[" + " ".join(pairs) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_format(item, spec, nested=True) for item in value) + "]"
    if isinstance(value, GoStruct):
        return "{" + " ".join(_format(item, spec, nested=True) for item in value.fields.values()) + "}"
    return spec.pad(str(value))


def _go_syntax(value: Any, spec: _Spec, *, nested: bool = False) -> str:
    """%#v: `value` as Go source would write it (a string quoted, a map with its type)."""
    if value is None:
        return "interface {}(nil)" if nested else spec.pad("<nil>")
    if isinstance(value, str):
        return spec.pad(go_quote(value))
    if isinstance(value, dict):
        pairs = (
            f"{_go_syntax(key, spec)}:{_go_syntax(value[key], spec, nested=True)}" for key in sorted(value)
        )
        return go_type_name(value) + "{" + ", ".join(pairs) + "}"
    if isinstance(value, list | tuple):
        return (
            go_type_name(value) + "{" + ", ".join(_go_syntax(item, spec, nested=True) for item in value) + "}"
        )
    return _format(value, spec, nested=nested)


def _sign(negative: bool, spec: _Spec) -> str:
    if negative:
        return "-"
    return "+" if "+" in spec.flags else " " if " " in spec.flags else ""


def _format_int(value: int, spec: _Spec) -> str:
    verb = spec.verb
    if verb == "c":
        return spec.pad(chr(value) if 0 <= value <= 0x10FFFF else "\ufffd")
    if verb == "q":
        return spec.pad(_quote_rune(value))
    if verb == "U":
        text = f"U+{value & (1 << 64) - 1:04X}"  # a negative int as Go's uint64 of it
        return spec.pad(text + (f" '{chr(value)}'" if "#" in spec.flags and chr(value).isprintable() else ""))
    bases = {"v": 10, "d": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}
    if verb not in bases:
        if verb in "eEfFgG":
            return _bad(value, spec)
        return _bad(value, spec)
    digits = {2: "b", 8: "o", 10: "d", 16: "x"}[bases[verb]]
    text = format(abs(value), digits)
    if verb == "X":
        text = text.upper()
    if spec.precision is not None:
        text = text.rjust(spec.precision, "0") if spec.precision or value else ""
    prefix = ""
    if verb == "O":
        prefix = "0o"
    elif "#" in spec.flags:
        prefix = {"b": "0b", "o": "0", "x": "0x", "X": "0X"}.get(verb, "")
    if spec.precision is not None:  # the precision gives the zeros: Go pads the rest with spaces
        spec = _Spec(spec.verb, spec.flags.replace("0", ""), spec.width, spec.precision)
    return spec.pad(_sign(value < 0, spec) + prefix + text, numeric=True)


def _format_float(value: float, spec: _Spec) -> str:
    verb = spec.verb
    if verb not in "vbeEfFgGxX":
        return _bad(value, spec)
    if math.isinf(value) or math.isnan(value):
        text = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
        if value > 0 and "+" not in spec.flags:
            text = text[1:]
        return spec.pad(text)
    negative = value < 0 or (value == 0 and math.copysign(1, value) < 0)
    magnitude = abs(value)
    precision = spec.precision
    if verb in "vgG":
        text = _shortest_g(magnitude) if precision is None else _precise_g(magnitude, precision)
        if verb == "G":
            text = text.upper()
    elif verb in "eE":
        text = format(magnitude, f".{6 if precision is None else precision}e")
        if verb == "E":
            text = text.upper()
    elif verb in "fF":
        text = format(magnitude, f".{6 if precision is None else precision}f")
    elif verb in "xX":
        text = _hex_float(magnitude)
        if verb == "X":
            text = text.upper()
    else:  # b
        mantissa, exponent = math.frexp(magnitude)
        text = f"{int(mantissa * 2**53)}p{exponent - 53:+d}"
    if "#" in spec.flags and verb != "b":
        text = _with_point_and_zeros(text, verb, precision)
    return spec.pad(_sign(negative, spec) + text, numeric=True)


def _with_point_and_zeros(text: str, verb: str, precision: int | None) -> str:
    """The `#` flag on a float, as Go's fmtFloat applies it: always a decimal point, and for %g and %x
    zeros up to the precision's count of significant characters (6 without one), counted as Go
    counts them (from the first that is not 0, an `x` included)."""
    digits = (6 if precision is None else precision) if verb in "gGx" else 0
    tail, has_point, seen_nonzero = "", False, False
    for index, char in enumerate(text):
        if char == ".":
            has_point = True
        elif char in "pP" or (char in "eE" and verb not in "xX"):
            text, tail = text[:index], text[index:]
            break
        else:
            seen_nonzero = seen_nonzero or char != "0"
            digits -= seen_nonzero
    if not has_point:
        digits -= text == "0"
        text += "."
    return text + "0" * max(digits, 0) + tail


def _shortest_g(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 64): the shortest digits, %e from an exponent of 6 on."""
    if value == 0:
        return "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + int(exponent)  # where the decimal point falls
    power = point - 1
    if power < -4 or power >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _precise_g(value: float, precision: int) -> str:
    text = format(value, f".{max(precision, 1)}g")
    mantissa, e, power = text.partition("e")
    if e:
        return f"{mantissa}e{power[0]}{int(power[1:]):02d}"
    return text


def _hex_float(value: float) -> str:
    if value == 0:
        return "0x0p+00"
    mantissa, _, power = value.hex().partition("p")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}p{power[0]}{int(power[1:]):02d}"


def _format_string(value: str, spec: _Spec) -> str:
    verb = spec.verb
    if verb in "vs":
        if spec.precision is not None:
            value = value[: spec.precision]
        return spec.pad(value)
    if verb == "q":
        if spec.precision is not None:
            value = value[: spec.precision]
        if "#" in spec.flags and "`" not in value and all(c == "\t" or c.isprintable() for c in value):
            return spec.pad(f"`{value}`")
        return spec.pad(go_quote(value, ascii_only="+" in spec.flags))
    if verb in "xX":
        data = value.encode()
        if spec.precision is not None:
            data = data[: spec.precision]
        separator = " " if " " in spec.flags else ""
        prefix = ("0x" if verb == "x" else "0X") if "#" in spec.flags else ""
        hex_bytes = [format(byte, "02x" if verb == "x" else "02X") for byte in data]
        if separator:
            return spec.pad(" ".join(prefix + part for part in hex_bytes))
        return spec.pad(prefix + "".join(hex_bytes))
    return _bad(value, spec)


_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str, ascii_only: bool = False, quote: str = '"') -> str:
    """strconv.Quote: Go's double-quoted string literal for `text`."""
    out = [quote]
    for char in text:
        code = ord(char)
        if char == quote or char == "\\":
            out.append("\\" + char)
        elif char in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif char.isprintable() and not (ascii_only and code >= 0x80):
            out.append(char)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append(quote)
    return "".join(out)


def _quote_rune(code: int) -> str:
    if not 0 <= code <= 0x10FFFF:
        code = 0xFFFD
    return go_quote(chr(code), quote="'")


_HTML_ESCAPES = str.maketrans(
    {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
)


def html_escape(text: str) -> str:
    """text/template's `html` (Go's HTMLEscapeString)."""
    return text.translate(_HTML_ESCAPES)


_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BASE64_VALUES = {byte: value for value, byte in enumerate(_BASE64_ALPHABET)}


class Base64Error(ValueError):
    """Go's CorruptInputError: `illegal base64 data at input byte N`."""

    def __init__(self, position: int) -> None:
        super().__init__(f"illegal base64 data at input byte {position}")


def go_base64_decode(text: str) -> bytes:
    """base64.StdEncoding.DecodeString: padded, line breaks skipped, and a mistake named by the byte
    at which Go's decoder finds it."""
    source, out, index = text.encode(), bytearray(), 0
    while True:
        index, quantum = _base64_quantum(source, index)
        if quantum is None:
            return bytes(out)
        out += quantum


def _base64_quantum(source: bytes, index: int) -> tuple[int, bytes | None]:
    """Go's decodeQuantum: the next four characters' bytes, or None at the end."""
    values: list[int] = []
    while len(values) < 4:
        if index == len(source):
            if not values:
                return index, None
            raise Base64Error(index - len(values))  # padding is missing
        byte = source[index]
        index += 1
        if byte in _BASE64_VALUES:
            values.append(_BASE64_VALUES[byte])
            continue
        if byte in b"\r\n":
            continue
        if byte != ord("=") or len(values) < 2:
            raise Base64Error(index - 1)
        if len(values) == 2:  # "==" is expected; the first is read
            while index < len(source) and source[index] in b"\r\n":
                index += 1
            if index == len(source):
                raise Base64Error(len(source))
            if source[index] != ord("="):
                raise Base64Error(index - 1)
            index += 1
        while index < len(source) and source[index] in b"\r\n":
            index += 1
        if index < len(source):
            raise Base64Error(index)  # something after the padding
        break
    number = 0
    for value in values + [0] * (4 - len(values)):
        number = number << 6 | value
    return index, number.to_bytes(3, "big")[: len(values) - 1]
