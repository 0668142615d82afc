"""`modelplane up --tls-cert FILE --tls-key FILE`: a certificate that cannot serve is one line at start."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys

import pytest

from modelplane.local.tls import TLSConfigError, TLSFiles
from tests.local.certificates import write_certificates

NOW = datetime.datetime.now(datetime.UTC)


def test_a_valid_certificate_is_taken(tmp_path):
    _, cert, key = write_certificates(tmp_path)
    TLSFiles(cert, key).check()


def test_an_expired_certificate_is_refused(tmp_path):
    _, cert, key = write_certificates(
        tmp_path, valid_from=NOW - datetime.timedelta(days=10), valid_until=NOW - datetime.timedelta(days=1)
    )
    with pytest.raises(TLSConfigError, match=f"the certificate {cert} expired on"):
        TLSFiles(cert, key).check()


def test_a_certificate_not_valid_yet_is_refused(tmp_path):
    _, cert, key = write_certificates(tmp_path, valid_from=NOW + datetime.timedelta(days=1))
    with pytest.raises(TLSConfigError, match="is not valid before"):
        TLSFiles(cert, key).check()


def test_a_folder_for_a_file_is_refused(tmp_path):
    _, _, key = write_certificates(tmp_path)
    with pytest.raises(TLSConfigError, match="Is a directory"):
        TLSFiles(tmp_path, key).check()


def test_up_says_in_one_line_why_a_certificate_cannot_serve(tmp_path):
    _, _, key = write_certificates(tmp_path)
    home = tmp_path / "home"
    answer = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelplane",
            "up",
            "--home",
            str(home),
            "--api-port",
            "0",
            "--gateway-port",
            "0",
            "--tls-cert",
            str(tmp_path),
            "--tls-key",
            str(key),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert answer.returncode != 0
    assert answer.stderr.strip().splitlines() == [f"modelplane up: cannot read {tmp_path}: Is a directory"]
