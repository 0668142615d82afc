"""Keeping the server's signal handlers from a native library that installs its own as it loads.

Paddle installs glog's failure handlers when it is imported, SIGTERM's among them: a SIGTERM then prints
a C++ stack and aborts the process instead of draining it. Python's `signal` module cannot put its own
handler back from the thread a model loads on, and would not know it had been replaced, so the actions
are saved and restored as the C library holds them (`sigaction`), whatever thread runs this.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
from collections.abc import Iterator

# Room for any platform's `struct sigaction` (glibc's is 152 bytes): it is only copied out and back in.
_SIGACTION_SIZE = 512


@contextlib.contextmanager
def signal_actions_kept(*signals: signal.Signals) -> Iterator[None]:
    """Puts the actions of `signals` back as they were before the block, whatever it installed."""
    libc = _libc()
    saved = {}
    for signum in signals:
        action = ctypes.create_string_buffer(_SIGACTION_SIZE)
        if libc.sigaction(int(signum), None, action) == 0:
            saved[signum] = action
    try:
        yield
    finally:
        for signum, action in saved.items():
            libc.sigaction(int(signum), action, None)


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None)  # the C library this process runs on
    libc.sigaction.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    libc.sigaction.restype = ctypes.c_int
    return libc
