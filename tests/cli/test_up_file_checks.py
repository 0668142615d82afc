"""What `modelplane up` checks of the files it is given: before it restarts in place (SIGHUP), that the
program run again with the same arguments can start, or the platform serves on as it is; at start, that
its secrets are not readable by other users."""

from __future__ import annotations

from modelplane.cli.main import build_parser
from modelplane.cli.up import _restart_problem

ISVC = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
spec:
  predictor:
    sklearn:
      storageUri: pvc://examples/sklearn-iris
"""


def test_a_file_to_apply_that_cannot_be_read_any_more_stops_the_restart(tmp_path):
    manifest = tmp_path / "iris.yaml"
    manifest.write_text(ISVC)
    args = build_parser().parse_args(["up", "-f", str(manifest)])
    assert _restart_problem(args) is None
    manifest.unlink()
    problem = _restart_problem(args)
    assert problem is not None and str(manifest) in problem
    manifest.write_text("kind: Unknown\napiVersion: v1\nmetadata: {name: x}\n")
    assert "modelplane does not serve this kind" in _restart_problem(args)


def test_a_secret_file_others_may_read_is_said(tmp_path, capsys):
    from modelplane.cli.up import _warn_if_others_can_read

    token = tmp_path / "token"
    token.write_text("a-token-long-enough")
    token.chmod(0o644)
    _warn_if_others_can_read(token, "--auth-token-file")
    assert capsys.readouterr().err == (
        f"Warning: --auth-token-file {token} may be read by other users: chmod 600 {token}\n"
    )
    token.chmod(0o600)
    _warn_if_others_can_read(token, "--auth-token-file")
    _warn_if_others_can_read(None, "--tls-key")
    assert capsys.readouterr().err == ""
