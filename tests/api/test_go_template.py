"""modelplane's Go text/template engine: each expectation is what kubectl 1.32's Go templates print
(`kubectl create configmap ... --dry-run=client -o go-template=...` over the same data)."""

from __future__ import annotations

import contextlib
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelplane.api.go_template import KUBECTL_FUNCTIONS, GoStruct, GoTemplateError, Template
from modelplane.api.templates import TemplateError, render_container

DATA = {
    "kind": "ConfigMap",
    "apiVersion": "v1",
    "metadata": {"name": "foo", "creationTimestamp": None},
    "data": {"a": "b", "c": "d"},
}


def execute(text: str, data=DATA) -> str:
    return Template("output", text, KUBECTL_FUNCTIONS).execute(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{.metadata.name}} {{.metadata.missing}} {{len .data}}", "foo <no value> 2"),
        ("{{.metadata.creationTimestamp}}|{{index .data `zz`}}", "<no value>|<no value>"),
        ("{{.data}} {{.metadata}}", "map[a:b c:d] map[creationTimestamp:<nil> name:foo]"),
        ('{{printf "%5.2f|%q|%v|%x|%d" 3.14159 "hi" .data 255 3}}', ' 3.14|"hi"|map[a:b c:d]|ff|3'),
        (
            '{{printf "%v %g %v %v %v" 1e6 1e6 123456.0 1234567.0 0.00001}}',
            "1e+06 1e+06 123456 1.234567e+06 1e-05",
        ),
        (
            '{{printf "%s %d" 3 "x"}}|{{printf "%d"}}|{{printf "%d" 1 2}}',
            "%!s(int=3) %!d(string=x)|%!d(MISSING)|1%!(EXTRA int=2)",
        ),
        (
            '{{printf "%q %x %X %o %b %c %U %t %e %8.3f|%-5d|%05d|%+d" "a\\tb" "hi" 255 8 5 65 65 true 1234.5678 3.14159 42 42 42}}',
            '"a\\tb" 6869 FF 10 101 A U+0041 true 1.234568e+03    3.142|42   |00042|+42',
        ),
        (
            '{{printf "%08.3f|%+.2e|%g|%G|%.3g" -3.14159 12345.678 0.000012345 1e-7 1234.5678}}',
            "-003.142|+1.23e+04|1.2345e-05|1E-07|1.23e+03",
        ),
        ('{{printf "%v|%s|%d" .missing .missing .missing}}', "<nil>|%!s(<nil>)|%!d(<nil>)"),
        ('{{printf "%.3s|%5.1q|%T" "abcdef" "abc" 3}}', 'abc|  "a"|int'),
        (
            '{{js "<a\'b=\\"&"}}|{{urlquery "a b&c/d"}}|{{html "<a&>"}}',
            "\\u003Ca\\'b\\u003D\\\"\\u0026|a+b%26c%2Fd|&lt;a&amp;&gt;",
        ),
        ('{{print 1 2 "a" "b" 3}}|{{println 1 "a"}}', "1 2ab3|1 a\n"),
        ("{{$.data.a}} {{range $k, $v := .data}}{{$k}}={{$v}};{{end}}", "b a=b;c=d;"),
        ("{{range .data}}{{.}}{{else}}none{{end}}{{range .zz}}x{{else}}none{{end}}", "bdnone"),
        ("{{with .data.a}}{{.}}{{end}}{{with .zz}}y{{else}}n{{end}}", "bn"),
        ("{{with .zz}}a{{else with .data}}{{.a}}{{end}}", "b"),
        ('{{if eq .data.a "b"}}yes{{else if eq .data.a "c"}}c{{else}}no{{end}}', "yes"),
        ('{{if ne .data.a "b"}}yes{{else if eq .data.c "d"}}c{{else}}no{{end}}', "c"),
        ("{{- /* c */ -}} x {{- 3 -}} y", "x3y"),
        ('{{and 1 0 2}}{{or 0 "" 3}}{{not 0}}', "03true"),
        ('{{ 3 | printf "%d %s" "x"}}', "%!d(string=x) %!s(int=3)"),
        ('{{range .data}}{{if eq . "d"}}{{break}}{{end}}{{.}}{{end}}', "b"),
        ('{{range .data}}{{if eq . "b"}}{{continue}}{{end}}{{.}}{{end}}', "d"),
        ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
        ("{{1.5}} {{0x10}} {{'a'}} {{-3}} {{1e3}}", "1.5 16 97 -3 1000"),
        ('{{slice "hello" 1 3}}{{slice "hello" 2}}|{{eq "a" "b" "c" "a"}}', "elllo|true"),
        ('{{exists . "data" "a"}} {{exists . "data" "z"}} {{base64decode "aGVsbG8="}}', "true false hello"),
        ('{{printf "%%|%!|%z" 1}}', "%|%!!(int=1)|%!z(MISSING)"),
    ],
)
def test_execution_prints_what_go_prints(text, expected):
    assert execute(text) == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{{.foo bar}}", 'template: output:1: function "bar" not defined'),
        ("{{.a.b", "template: output:1: unclosed action"),
        ("{{if}}{{end}}", "template: output:1: missing value for if"),
        ("{{if 1}}", "template: output:1: unexpected EOF"),
        ("{{end}}", "template: output:1: unexpected {{end}}"),
        ("{{$x}}", 'template: output:1: undefined variable "$x"'),
        ("{{break}}", "template: output:1: {{break}} outside {{range}}"),
        ("{{.data.a}", "template: output:1: bad character U+007D '}'"),
        ("{{.data.a)}}", "template: output:1: unexpected right paren"),
        ("{{if 1}}\nx\n{{.a b}}\n{{end}}", 'template: output:3: function "b" not defined'),
    ],
)
def test_a_template_that_does_not_parse_is_said_as_go_says_it(text, error):
    with pytest.raises(GoTemplateError) as refused:
        Template("output", text, KUBECTL_FUNCTIONS)
    assert str(refused.value) == error


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "{{len .missing}}",
            '1:2: executing "output" at <len .missing>: error calling len: reflect: call of reflect.Value.Type on zero Value',
        ),
        (
            "{{.metadata.creationTimestamp.x}}",
            '1:11: executing "output" at <.metadata.creationTimestamp.x>: nil pointer evaluating interface {}.x',
        ),
        (
            "{{.metadata.name.x}}",
            '1:11: executing "output" at <.metadata.name.x>: can\'t evaluate field x in type interface {}',
        ),
        (
            "{{index .data 5}}",
            '1:2: executing "output" at <index .data 5>: error calling index: value has type int; should be string',
        ),
        (
            "{{eq 1 1.0}}",
            '1:2: executing "output" at <eq 1 1.0>: error calling eq: incompatible types for comparison',
        ),
        (
            '{{slice "abc" 1 5}}',
            '1:2: executing "output" at <slice "abc" 1 5>: error calling slice: index out of range: 5',
        ),
        ("{{nil}}", '1:2: executing "output" at <nil>: nil is not a command'),
        ("{{.data.a 1}}", '1:7: executing "output" at <.data.a>: a is not a method but has arguments'),
        ("{{3 4}}", '1:2: executing "output" at <3>: can\'t give argument to non-function 3'),
        (
            "line1\n  {{.metadata.name.x}}",
            '2:13: executing "output" at <.metadata.name.x>: can\'t evaluate field x in type interface {}',
        ),
    ],
)
def test_an_execution_error_is_said_as_go_says_it(text, error):
    with pytest.raises(GoTemplateError) as refused:
        execute(text)
    assert str(refused.value) == f"template: output:{error}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{{define "T"}}[{{.}}]{{end}}{{template "T" .data.a}}|{{template "T"}}', "[b]|[<no value>]"),
        ('{{define "T"}}[{{$.a}}]{{end}}{{$x := 1}}{{template "T" .data}}', "[b]"),
        ('{{define "T"}}<{{.}}>{{end}}{{template "T" $x := 5}}{{$x}}', "<5>5"),
        ("{{block `B` .data}}<{{.a}}>{{end}}|{{with .data}}{{block `C` .c}}[{{.}}]{{end}}{{end}}", "<b>|[d]"),
        ('{{template "T" .}}{{define "T"}}defined later{{end}}', "defined later"),
        ('{{define "T"}}a{{end}}{{define "T"}} {{end}}{{template "T"}}', "a"),
        ('{{define "T"}} {{end}}{{define "T"}}b{{end}}{{template "T"}}', "b"),
        ('{{define "output"}}the template itself{{end}}', "the template itself"),
        ('{{- define "T" -}}  a  {{- end -}}  {{ template "T" }}', "a"),
        (
            '{{define "T"}}{{range $k, $v := .}}{{$k}}{{template "U" $v}};{{end}}{{end}}'
            '{{define "U"}}={{.}}{{end}}{{template "T" .data}}',
            "a=b;c=d;",
        ),
        (
            '{{define "T"}}{{if .}}{{.}}{{template "T" (slice . 1)}}{{end}}{{end}}{{template "T" "abc"}}',
            "abcbcc",
        ),
        (
            '{{define "T"}}{{if lt (len .) 50}}{{template "T" (printf "%s." .)}}{{else}}{{len .}}{{end}}{{end}}'
            '{{template "T" ""}}',
            "50",
        ),
    ],
)
def test_nested_templates_run_as_go_runs_them(text, expected):
    assert execute(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{{printf "%[2]d %[1]d" 11 22}}|{{printf "%[3]*.[2]*[1]f" 12.0 2 6}}|{{printf "%d %d %#[1]x %#x" 16 17}}',
            "22 11| 12.00|16 17 0x10 0x11",
        ),
        (
            '{{printf "%[5]d" 1 2}}|{{printf "%[-3]d" 1}}|{{printf "%[2]*[1]d" 12 5}}|{{printf "%[x]d" 1}}|{{printf "%[1]" 1}}',
            "%!d(BADINDEX)|%!d(BADINDEX)|   12|%!d(BADINDEX)|%!(NOVERB)",
        ),
        (
            '{{printf "%*d|%-*d|%.*f" 5 1 -5 2 2 3.14159}}|{{printf "%*s" 4.5 "hi"}}|{{printf "%.*s" 4.5 "hi"}}|{{printf "%.*d" -1 7}}',
            "    1|2    |3.14|%!(BADWIDTH)hi|%!(BADPREC)hi|%!(BADPREC)7",
        ),
        (
            '{{printf "%[1]d %d" 1 2 3}}|{{printf "%d" 1 2}}|{{printf "%[2]d" 1 2}}|{{printf "%[3]2d" 1 2 3}}|{{printf "%[1].2d" 1}}',
            "1 2|1%!(EXTRA int=2)|2|%!d(BADINDEX)|%!d(BADINDEX)",
        ),
        (
            '{{printf "%[1]*d" 3 4}}|{{printf "%[2]d %[2]d %d" 1 2 3}}|{{printf "%[1" 1}}|{{printf "%[]d" 1}}|{{printf "%[1]%" 1}}|{{printf "%*[2]d" 7}}',
            "  4|2 2 3|%!(NOVERB)|%!d(BADINDEX)|%|%!d(BADINDEX)",
        ),
        (
            '{{printf "%-05d|%0-5d|%*d" 3 3 "x" 4}}|{{printf "%.d|%5.d|%.0d" 0 0 0}}|{{printf "%" }}|{{printf "%-"}}|{{printf "%[2]"}}',
            "3    |3    |%!(BADWIDTH)4||     ||%!(NOVERB)|%!(NOVERB)|%!(NOVERB)",
        ),
        ('{{printf "%[2]v" 1}}|{{printf "%d %[1]*d" 1 2}}', "%!v(BADINDEX)|1 2"),
    ],
)
def test_printf_reads_explicit_argument_indexes_as_go_does(text, expected):
    assert execute(text) == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{{define "T"}}{{$x}}{{end}}{{$x := 1}}', 'template: output:1: undefined variable "$x"'),
        (
            '{{define "B"}}x{{end}}{{block "B" .data}}y{{end}}',
            'template: output:1: template: multiple definition of template "B"',
        ),
        (
            '{{define "output"}}hi{{end}}x',
            'template: output:1: template: multiple definition of template "output"',
        ),
        ('{{if true}}{{define "T"}}a{{end}}{{end}}', "template: output:1: unexpected <define> in command"),
        ('{{define "T"}}a{{else}}b{{end}}', "template: output:1: unexpected {{else}} in define clause"),
        ('{{block "T" .}}a{{else}}b{{end}}', "template: output:1: unexpected {{else}} in block clause"),
        ("{{define T}}a{{end}}", 'template: output:1: unexpected "T" in define clause'),
        ('{{define "T" .}}a{{end}}', "template: output:1: unexpected <.> in define clause"),
        ("{{template}}", 'template: output:1: unexpected "}}" in template clause'),
        ('{{template "T" | printf "%s"}}', 'template: output:1: unexpected "|" in template clause'),
        ('{{define "T"}}{{break}}{{end}}', "template: output:1: {{break}} outside {{range}}"),
        ('{{define "a\\x"}}x{{end}}', "template: output:1: invalid syntax"),
        ('{{define "T"}}', "template: output:1: unexpected EOF"),
    ],
)
def test_a_nested_template_that_does_not_parse_is_said_as_go_says_it(text, error):
    with pytest.raises(GoTemplateError) as refused:
        Template("output", text, KUBECTL_FUNCTIONS)
    assert str(refused.value) == error


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            '{{template "X" .data}}',
            '1:11: executing "output" at <{{template "X" .data}}>: template "X" not defined',
        ),
        (
            '{{define "T"}}{{.x.y}}{{end}}{{template "T" 5}}',
            '1:18: executing "T" at <.x.y>: can\'t evaluate field x in type int',
        ),
        (
            '{{define "T"}}\n{{len 3}}{{end}}\n{{template "T" .data}}',
            '2:2: executing "T" at <len 3>: error calling len: len of type int',
        ),
        (
            '{{define "T"}}{{.}}{{end}}{{template "T" 1 2}}',
            '1:41: executing "output" at <1>: can\'t give argument to non-function 1',
        ),
    ],
)
def test_an_error_in_a_nested_template_is_said_as_go_says_it(text, error):
    with pytest.raises(GoTemplateError) as refused:
        execute(text)
    assert str(refused.value) == f"template: output:{error}"


def test_a_template_that_calls_itself_forever_stops_at_the_depth_limit():
    with pytest.raises(GoTemplateError) as refused:
        execute('{{define "T"}}{{template "T" .}}{{end}}{{template "T" 1}}')
    # Go says the same at its depth, 100000
    assert str(refused.value) == (
        'template: output:1:25: executing "T" at <{{template "T" .}}>: exceeded maximum template depth (100)'
    )


def test_a_struct_has_only_its_fields():
    meta = GoStruct("v1.ObjectMeta", {"Name": "iris", "Labels": {"a": "b"}})
    assert Template("t", "{{.Name}} {{.Labels.a}} {{.Labels.z}}").execute(meta) == "iris b <no value>"
    with pytest.raises(GoTemplateError) as refused:
        Template("t", "{{.Spec}}").execute(meta)
    assert (
        str(refused.value)
        == 'template: t:1:2: executing "t" at <.Spec>: can\'t evaluate field Spec in type v1.ObjectMeta'
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{{printf "%1000000000d|" 1}}', "%!(NOVERB)%!(EXTRA int=1)"),
        ('{{printf "%.1000000000f|" 1.5}}', "%!(NOVERB)%!(EXTRA float64=1.5)"),
        ('{{printf "%*d|" 1000000000 1}}', "%!(BADWIDTH)1|"),
        ('{{printf "%.*f|" 1000000000 1.5}}', "%!(BADPREC)1.500000|"),
        ('{{printf "%*d|%*d|" -3 1 "x" 2}}', "1  |%!(BADWIDTH)2|"),
        ('{{printf "%*d"}}', "%!(BADWIDTH)%!d(MISSING)"),
    ],
)
def test_a_width_or_precision_past_gos_bound_is_said_as_go_says_it(text, expected):
    assert execute(text) == expected


def test_a_name_may_have_any_unicode_letter_as_in_go():
    assert execute("{{.données}} {{$é := 1}}{{$é}}", {"données": "x"}) == "x 1"
    with pytest.raises(GoTemplateError, match='function "À" not defined'):
        execute("{{À}}")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "{{" + "(" * 101 + "1" + ")" * 101 + "}}",
            "max expression depth exceeded (modelplane's limit: 100)",
        ),
        ("{{if 1}}" * 3000 + "{{end}}" * 3000, "max expression depth exceeded (modelplane's limit: 100)"),
        (
            '{{$x := "ab"}}{{range .}}{{$x = printf "%s%s" $x $x}}{{end}}',
            "the template makes more than 67108864 characters (modelplane's limit)",
        ),
        ('{{range .}}{{range $}}{{printf "%999999d" 1}}{{end}}{{end}}', "more than 67108864 characters"),
        (
            "{{range .}}{{range $}}{{range $}}{{range $}}x{{end}}{{end}}{{end}}{{end}}",
            "more than 1000000 steps",
        ),
    ],
)
def test_a_template_past_modelplanes_bounds_is_refused_with_the_limit(text, error):
    with pytest.raises(GoTemplateError, match=re.escape(error)):
        execute(text, list(range(100)))


def test_templates_at_the_bounds_still_execute():
    assert execute("{{" + "(" * 100 + "1" + ")" * 100 + "}}") == "1"
    assert execute("{{with .}}" * 100 + "x" + "{{end}}" * 100) == "x"
    assert len(execute('{{printf "%1000000d" 1}}')) == 1_000_000


template_pieces = st.sampled_from(
    ["{{", "}}", "{{- ", " -}}", " ", ".", ".metadata", ".data", "$", "$x", ":=", "=", "|", "(", ")", ",",
     "if", "else", "end", "range", "with", "break", "continue", "define", "printf", "print", "len", "index",
     "slice", "and", "or", "not", "eq", "lt", "html", "js", "exists", "base64decode", '"%1000000000d"',
     '"%.*f"', '"%*d"', "1000000000", "-1", "1e400", "0x", "'a'", '"a"', "`x`", "nil", "true", "/*", "*/",
     "\n", "9223372036854775808", "À", ".é"]
)  # fmt: skip
templates = st.lists(template_pieces | st.text(max_size=4), max_size=25).map("".join)


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None)
@given(text=templates)
def test_any_template_text_is_output_or_a_template_error(text):
    """Fuzzed: whatever the text, `get -o go-template` and runtime containers get text or an error that
    says what Go would, never another exception."""
    with contextlib.suppress(GoTemplateError):
        execute(text)
    with contextlib.suppress(TemplateError):
        render_container({"name": "c", "args": [text]}, {"name": "iris", "labels": {"a": "b"}})
