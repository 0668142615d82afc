"""What `modelplane up -f` prints of the files it applies once up: each object named as `modelplane apply`
names it, and a refusal placed at its file and line."""

from __future__ import annotations

from tests.e2e.platform_process import PlatformProcess

SECRET_AND_CONFIGMAP = """\
apiVersion: v1
kind: Secret
metadata:
  name: storage-config
stringData:
  localMinIO: '{"type": "s3"}'
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  level: debug
"""

INVALID_SERVICE = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: invalid
spec:
  predictor:
    sklearn:
      storageUri: pvc://models/iris
    minReplicas: -1
"""


def test_up_names_what_it_applies_as_apply_names_it(tmp_path):
    manifest = tmp_path / "core.yaml"
    manifest.write_text(SECRET_AND_CONFIGMAP)
    platform = PlatformProcess(tmp_path / "home", "-f", str(manifest))
    (tmp_path / "home").mkdir()
    platform.start()
    try:
        printed = [platform.process.stdout.readline().strip() for _ in range(2)]
    finally:
        platform.stop()
    assert printed == ["secret/storage-config created", "configmap/settings created"]


def test_up_places_a_refusal_of_its_files_at_the_file_and_line(tmp_path):
    manifest = tmp_path / "invalid.yaml"
    manifest.write_text(INVALID_SERVICE)
    result = PlatformProcess(tmp_path).cli(
        "up", "-f", str(manifest), "--api-port", "0", "--gateway-port", "0", check=False
    )
    assert result.returncode == 2
    [refusal] = [line for line in result.stderr.splitlines() if line.startswith("modelplane up: ")]
    assert refusal == (
        f'modelplane up: {manifest}:9: InferenceService.serving.kserve.io "invalid" is invalid: '
        "spec.predictor.minReplicas: 'MinReplicas' cannot be less than 0 (nothing was applied)"
    )
