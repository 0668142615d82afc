"""What Knative Serving's admission webhook refuses in a Knative Service's revision template, beyond its
CRD (which keeps the pod spec's unknown fields): knative/serving's `pkg/apis/serving/k8s_validation.go`,
`fieldmask.go` and `pkg/apis/autoscaling/annotation_validation.go`, with the default feature flags and
those docs/kubernetes.md asks to enable (init containers, emptyDir and PVC volumes)."""

from __future__ import annotations

import posixpath

KPA = "kpa.autoscaling.knative.dev"
_PORT_NAMES = ("", "h2c", "http1")  # the name chooses the protocol; nothing else is taken
_RESERVED_PORTS = {8012, 8013, 8022, 9090, 9091, 8008}  # the queue-proxy's
_RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}
_POD_FIELDS = {
    "serviceAccountName",
    "containers",
    "volumes",
    "imagePullSecrets",
    "enableServiceLinks",
    "automountServiceAccountToken",
    "initContainers",
    "containerConcurrency",
    "timeoutSeconds",
    "responseStartTimeoutSeconds",
    "idleTimeoutSeconds",
}
_CONTAINER_FIELDS = {
    "name",
    "args",
    "command",
    "env",
    "workingDir",
    "envFrom",
    "image",
    "imagePullPolicy",
    "livenessProbe",
    "ports",
    "readinessProbe",
    "resources",
    "securityContext",
    "startupProbe",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "volumeMounts",
}
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_WRITABLE_VOLUMES = {"emptyDir", "persistentVolumeClaim", "ephemeral"}


def knative_problems(ksvc: dict) -> list[str]:
    """Why Knative's webhook would refuse the Knative Service (empty when it would take it)."""
    template = (ksvc.get("spec") or {}).get("template") or {}
    pod = template.get("spec") or {}
    found = [f"pod field {k} is off by default" for k, v in pod.items() if _set(v) and k not in _POD_FIELDS]
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    containers, inits = pod.get("containers") or [], pod.get("initContainers") or []
    mounted = {m.get("name") for c in [*containers, *inits] for m in c.get("volumeMounts") or []}
    found += [f"volume {name!r} is not mounted" for name in volumes if name not in mounted]
    declared = [p for c in containers for p in c.get("ports") or []]
    if not declared and len(containers) > 1:
        found.append("missing field(s): containers[*].ports (no container of several declares the port)")
    if len(declared) > 1:
        found.append("more than one container port is set")
    for container in inits:
        found += [
            f"init container {container.get('name')}: {p} not allowed" for p in _PROBES if p in container
        ]
        found += _container_problems(container, volumes, serving=False)
    for container in containers:
        serving = len(containers) == 1 or bool(container.get("ports"))
        if not serving:  # a sidecar's probes need the multi-container-probing feature
            found += [
                f"container {container.get('name')}: a sidecar's {p}" for p in _PROBES if p in container
            ]
        found += _container_problems(container, volumes, serving=serving)
    found += _annotation_problems((template.get("metadata") or {}).get("annotations") or {})
    return found


def _container_problems(container: dict, volumes: dict, *, serving: bool) -> list[str]:
    name = container.get("name")
    found = [f"field {k}" for k, v in container.items() if _set(v) and k not in _CONTAINER_FIELDS]
    reserved = _RESERVED_ENV if serving else _RESERVED_ENV - {"PORT"}
    for variable in container.get("env") or []:
        if variable.get("name") in reserved:
            found.append(f"env {variable['name']} is reserved")
        if {"fieldRef", "resourceFieldRef"} & set(variable.get("valueFrom") or {}):
            found.append(f"env {variable.get('name')}: fieldRef is off by default")
    ports = container.get("ports") or []
    if ports and serving:
        port = ports[0]
        if port.get("name", "") not in _PORT_NAMES:
            found.append(f"port name {port['name']!r} is not allowed (empty, h2c or http1)")
        if port.get("containerPort") in _RESERVED_PORTS:
            found.append(f"port {port['containerPort']} is reserved")
    served_name = ports[0].get("name") if ports else "http"
    for probe in _PROBES:
        handlers = container.get(probe) or {}
        port = (handlers.get("httpGet") or handlers.get("tcpSocket") or {}).get("port")
        if serving and isinstance(port, str) and port != served_name:
            found.append(f"{probe}: probe port must match container port")
    security = container.get("securityContext") or {}
    if security.get("privileged") or (security.get("capabilities") or {}).get("add"):
        found.append("securityContext: privileged or added capabilities")
    paths = set()
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount.get("name"))
        path = posixpath.normpath(mount.get("mountPath", ""))
        if volume is None:
            found.append(f"volumeMount {mount.get('name')!r} has no matching volume")
            continue
        if path in ("/", "/dev", "/dev/log") or path in paths:
            found.append(f"mountPath {path} is reserved or repeated")
        paths.add(path)
        if not (_WRITABLE_VOLUMES & set(volume)) and not mount.get("readOnly"):
            found.append(f"volumeMount {mount['name']!r} should be readOnly for this type of volume")
        if (volume.get("persistentVolumeClaim") or {}).get("readOnly") and not mount.get("readOnly"):
            found.append(f"volume {mount['name']!r} is readOnly but its mount is not")
    return [f"container {name}: {problem}" for problem in found]


def _annotation_problems(annotations: dict) -> list[str]:
    found = []
    prefix = "autoscaling.knative.dev/"
    klass = annotations.get(prefix + "class", KPA)
    metric = annotations.get(prefix + "metric")
    if klass == KPA and metric is not None and metric not in ("concurrency", "rps"):
        found.append(f"metric {metric!r} is not one of the KPA's (concurrency, rps)")
    scale = {}
    for bound in ("min-scale", "max-scale", "initial-scale"):
        value = annotations.get(prefix + bound)
        if value is not None:
            try:
                scale[bound] = int(value)
            except ValueError:
                found.append(f"{bound} {value!r} is not an integer")
    if scale.get("max-scale") and scale["max-scale"] < scale.get("min-scale", 0):
        found.append("max-scale is less than min-scale")
    if scale.get("initial-scale", 1) <= 0:
        found.append("initial-scale must be greater than 0")
    return [f"annotation {problem}" for problem in found]


def _set(value: object) -> bool:
    """Whether Knative's field masks see the field as set (they ignore a Go zero value)."""
    return value not in (None, False, 0, "", [], {})
