"""`modelplane up` stopped by a signal to its whole process group (`kill -TERM -PGID`; Ctrl-C in a
terminal sends SIGINT so): it stops as for a signal to it alone, and starts nothing again meanwhile."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tests.e2e.platform_process import PlatformProcess


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_whole_group_is_a_clean_stop(tmp_path, signum):
    platform = PlatformProcess(tmp_path, "--gateway-workers", "2").start(own_group=True)
    process = platform.process
    os.killpg(process.pid, signum)
    try:
        code = process.wait(120)
    except subprocess.TimeoutExpired:
        platform.stop()
        raise
    finally:
        process.stdout.close()
    log = platform.log()
    assert "starting it again" not in log, log
    assert code == 0, log
    assert log.rstrip().endswith("stopped"), log
