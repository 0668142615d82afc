"""The Java virtual machine PMML models are evaluated in: one per process, started on first use and
reached over Py4J, as KServe's pmmlserver reaches it.

The JVM runs in a process group of its own, so the SIGTERM that asks a replica to stop (sent to the
replica's whole process group) does not end it while the replica still answers the requests it holds.
It ends when the model server's process does, however that process ends: Py4J's `die_on_exit` makes the
JVM exit when its stdin, a pipe from the server, closes.

`nthread` (the replica's cpu) becomes the JVM's processor count, which sizes its garbage collector, its
compiler threads and the pool `evaluateAll` spreads rows over; otherwise the JVM counts every core.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

from modelplane.runtimes.base import require

JAVA_MISSING = (
    "the pmml runtime evaluates PMML models in a Java virtual machine, and no `java` was found "
    "(in $JAVA_HOME/bin or on PATH): install a Java runtime, 11 or later "
    "(Debian/Ubuntu: apt-get install default-jre-headless)"
)

_start_lock = threading.Lock()


class JavaMissing(RuntimeError):
    """No Java runtime to evaluate PMML models with."""


def find_java() -> str:
    """The `java` program: $JAVA_HOME/bin/java when there is one, else the first on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise JavaMissing(JAVA_MISSING)
    return found


def java_backend(nthread: int | None = None) -> Any:
    """jpmml_evaluator's Py4J backend on this process's JVM, which the first call starts."""
    jpmml = require("jpmml_evaluator", "pmml")
    py4j_backend = require("jpmml_evaluator.py4j", "pmml")
    with _start_lock:
        if py4j_backend.Py4JBackend.gateway is None:
            py4j_backend.Py4JBackend.gateway = _launch(jpmml, nthread)
    return py4j_backend.Py4JBackend()


def _launch(jpmml: Any, nthread: int | None) -> Any:
    java_gateway = require("py4j.java_gateway", "pmml")
    java = find_java()
    # jpmml_evaluator's own launcher (Py4JBackend.createGateway) has neither die_on_exit nor a process
    # group of its own; its classpath (the evaluator's jars) is the same.
    classpath = os.pathsep.join(jpmml._classpath([]))
    try:
        return java_gateway.JavaGateway.launch_gateway(
            classpath=classpath,
            javaopts=[f"-XX:ActiveProcessorCount={nthread}"] if nthread else [],
            java_path=java,
            die_on_exit=True,
            create_new_process_group=True,
            redirect_stderr=sys.stderr,
        )
    except (OSError, ValueError) as exc:
        # ValueError: the JVM exited before it printed the port it listens on.
        raise RuntimeError(f"the Java virtual machine ({java}) did not start: {exc}") from None
