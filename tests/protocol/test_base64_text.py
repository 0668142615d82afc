"""The base64 decoder of pictures and TF Serving's `b64` values: the standard library's answers, faster."""

from __future__ import annotations

import base64
import os

import pytest

from modelplane.protocol import base64_text


@pytest.fixture(autouse=True, params=["pybase64", "standard library"])
def decoder(request, monkeypatch):
    """Each test runs with the fast decoder and with the standard library's, which stands in for it."""
    if request.param == "standard library":
        monkeypatch.setattr(base64_text, "_fast", None)
    else:
        assert base64_text._fast is not None, "pybase64 is in the test extras"


@pytest.mark.parametrize("size", [0, 1, 2, 3, 100, 70_000])
def test_it_decodes_what_the_standard_library_encodes(size):
    data = os.urandom(size)
    assert base64_text.decode(base64.b64encode(data).decode(), strict=True) == data
    assert base64_text.decode(base64.b64encode(data), strict=False) == data


def test_lenient_decoding_skips_line_breaks_as_the_standard_library_does():
    wrapped = base64.encodebytes(os.urandom(300))
    assert base64_text.decode(wrapped, strict=False) == base64.b64decode(wrapped)


@pytest.mark.parametrize("text", ["abc", "ab$d", "YWJj\nZA=="])
def test_strict_decoding_refuses_what_is_not_base64(text):
    with pytest.raises(base64_text.Error):
        base64_text.decode(text, strict=True)


def test_lenient_decoding_still_refuses_text_of_the_wrong_length():
    with pytest.raises(base64_text.Error):
        base64_text.decode("%%% not base64 %%%", strict=False)
