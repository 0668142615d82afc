"""Go's fmt, for the print functions of Go templates (`modelplane.api.go_template`): Sprint, Sprintln
and Sprintf with their verbs (`%v %s %q %d %x %X %o %b %c %U %e %f %g %t %T`, flags `+-# 0`, width and
precision), over Python values as Go templates see them (a dict is a map, a list a slice, None nil);
a verb that does not fit its value is shown as Go shows it (`%!d(string=x)`)."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

_MAX_WIDTH = 1_000_000
_VERB = re.compile(r"%(?P<flags>[-+# 0]*)(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d*))?(?P<verb>.)?", re.S)


def go_type_name(value: Any) -> str:
    from modelplane.api.go_template import GoStruct

    if value is None:
        return "<nil>"
    if isinstance(value, GoStruct):
        return value.type_name
    if isinstance(value, bool):
        return "bool"
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
    out: list[str] = []
    used = 0
    position = 0
    for found in _VERB.finditer(format_text):
        out.append(format_text[position : found.start()])
        position = found.end()
        verb = found["verb"]
        if verb is None:
            out.append("%!(NOVERB)")
            continue
        if verb == "%":
            out.append("%")
            continue
        flags, width, precision = found["flags"], found["width"], found["precision"]
        if width == "*":
            width, used = _star(args, used)
            if width is None:
                out.append("%!(BADWIDTH)")
            elif width < 0:
                width, flags = -width, flags.replace("0", "") + "-"
        elif width is not None:
            width = _parsed_number(width)
            if width is None:  # Go reads the rest of the format as the number it gave up on
                out.append("%!(NOVERB)")
                position = len(format_text)
                break
        if precision == "*":
            precision, used = _star(args, used)
            if precision is not None and precision < 0:
                precision = None
            if precision is None:
                out.append("%!(BADPREC)")
        elif precision is not None:
            precision = _parsed_number(precision) if precision else 0
            if precision is None:
                out.append("%!(NOVERB)")
                position = len(format_text)
                break
        spec = _Spec(verb, flags, width, precision)
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format(args[used], spec))
        used += 1
    out.append(format_text[position:])
    if used < len(args):
        extra = ", ".join(
            "<nil>" if arg is None else f"{go_type_name(arg)}={go_value_string(arg)}" for arg in args[used:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _too_large(number: int) -> bool:
    """Go's bound on a width or precision (fmt's tooLarge), which keeps one verb's text bounded."""
    return not -_MAX_WIDTH <= number <= _MAX_WIDTH


def _parsed_number(digits: str) -> int | None:
    """A width or precision written in the format, None past Go's bound (fmt's parsenum)."""
    number = 0
    for digit in digits:
        if _too_large(number):
            return None
        number = number * 10 + int(digit)
    return number


def _star(args: list[Any], used: int) -> tuple[int | None, int]:
    """A width or precision taken from the arguments (`%*d`): None unless an int within Go's bound."""
    if used >= len(args):
        return None, used
    value = args[used]
    if isinstance(value, int) and not isinstance(value, bool) and not _too_large(value):
        return value, used + 1
    return None, used + 1


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _bad(value: Any, spec: _Spec) -> str:
    if value is None:
        return f"%!{spec.verb}(<nil>)"
    return f"%!{spec.verb}({go_type_name(value)}={go_value_string(value)})"


def _format(value: Any, spec: _Spec) -> str:
    from modelplane.api.go_template import GoStruct

    verb = spec.verb
    if verb == "T":
        return spec.pad(go_type_name(value))
    if value is None:
        return spec.pad("<nil>") if verb == "v" else _bad(value, spec)
    if isinstance(value, bool):
        return spec.pad("true" if value else "false") if verb in "vt" else _bad(value, spec)
    if isinstance(value, int):
        return _format_int(value, spec)
    if isinstance(value, float):
        return _format_float(value, spec)
    if isinstance(value, str):
        return _format_string(value, spec)
    if isinstance(value, dict):
        pairs = (f"{_format(key, spec)}:{_format(value[key], spec)}" for key in sorted(value))
        return "map[" + " ".join(pairs) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_format(item, spec) for item in value) + "]"
    if isinstance(value, GoStruct):
        return "{" + " ".join(_format(item, spec) for item in value.fields.values()) + "}"
    return spec.pad(str(value))


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
        text = f"U+{value:04X}"
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
    return spec.pad(_sign(value < 0, spec) + prefix + text, numeric=spec.precision is None)


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
    return spec.pad(_sign(negative, spec) + text, numeric=True)


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
