"""The line of a replica's log that says why it ended."""

from __future__ import annotations

from modelplane.local.replicas.supervisor import failure_line

teardown = (
    "SystemExit: 3",
    "Exception ignored in: <function Server.__del__ at 0x7fd2d05b5f80>",
    "asyncio.exceptions.CancelledError",
    "RuntimeError: Event loop is closed",
    "Task was destroyed but it is pending!",
    "task: <Task cancelling name='Task-5' coro=<AioServer._server_main_loop() running at x>>",
    "[modelplane 2026-12-06T13:30:15Z] g2-predictor-00001: exited with code 3",
)
BIND_ERROR = (
    "OSError: [Errno 98] error while attempting to bind on address ('0.0.0.0', 8080): address already in use"
)


def written(tmp_path, *lines: str):
    path = tmp_path / "replica.log"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_the_last_error_before_the_interpreters_teardown_is_the_cause(tmp_path):
    logged = "2026-12-06 13:30:14.464 24976 uvicorn.error ERROR:    [Errno 98] error while attempting to bind"
    path = written(
        tmp_path,
        "2026-12-06 13:30:14.400 24976 kserve INFO [model_server.py:1] Starting",
        logged,
        "2026-12-06 13:30:14.464 24976 uvicorn.error INFO:     Application shutdown complete.",
        "Traceback (most recent call last):",
        '  File "server.py", line 182, in startup',
        BIND_ERROR,
        *teardown,
    )
    assert failure_line(path) == BIND_ERROR
    assert failure_line(written(tmp_path, logged, *teardown)) == logged


def test_a_tracebacks_exception_is_preferred_to_the_noise_after_it(tmp_path):
    path = written(
        tmp_path,
        "Traceback (most recent call last):",
        '  File "app/predictor.py", line 1, in <module>',
        "ModuleNotFoundError: No module named 'kserve'",
        "sys:1: RuntimeWarning: coroutine 'AioServer.shutdown' was never awaited",
        "task: <Task cancelling name='Task-5'>",
    )
    assert failure_line(path) == "ModuleNotFoundError: No module named 'kserve'"


def test_without_an_error_it_is_the_last_line(tmp_path):
    path = written(tmp_path, "loading", "bye", "[modelplane 2026-12-06T13:30:15Z] x: exited with code 0")
    assert failure_line(path) == "bye"
    assert failure_line(tmp_path / "absent.log") is None


def test_error_lines_in_their_usual_spellings(tmp_path):
    for line in ("error: cannot open model.bin", "Error: no such model", "ERROR no model", "fatal error: x"):
        assert failure_line(written(tmp_path, line, "shutting down")) == line


def test_the_line_is_bounded(tmp_path):
    assert len(failure_line(written(tmp_path, "ValueError: " + "x" * 5000)) or "") == 1000
