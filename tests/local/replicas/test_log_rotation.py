"""Log rotation under <home>/logs: copies kept, the writer undisturbed, only large logs touched."""

from __future__ import annotations

import asyncio
import select
import subprocess
import sys
import time

from modelplane.local.replicas.log_rotation import rotate, rotate_large_logs, rotate_logs_forever

WRITER = """
import sys, time
with open(sys.argv[1], "ab", buffering=0) as log:
    for number in range(1_000_000):
        log.write(b"line %08d of the replica\\n" % number)
        time.sleep(0.0002)
"""


def test_a_log_being_written_is_rotated_without_disturbing_its_writer(tmp_path):
    log = tmp_path / "replica.log"
    log.touch()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(log)])

    def written() -> None:  # whatever the machine's load, the writer has put lines in the log
        deadline = time.monotonic() + 30
        while log.stat().st_size < 1000 and time.monotonic() < deadline:
            time.sleep(0.05)

    try:
        for _ in range(4):
            written()
            rotate(log, backups=3)
        written()
    finally:
        writer.kill()
        writer.wait()
    copies = [log.with_name(f"replica.log.{n}") for n in (3, 2, 1)]
    assert all(copy.exists() for copy in copies)
    assert not log.with_name("replica.log.4").exists()
    numbers = []
    for path in [*copies, log]:
        text = path.read_bytes()
        assert text, f"{path.name} is empty"
        for line in text.splitlines():
            assert line.startswith(b"line ") and line.endswith(b" of the replica"), line  # whole lines only
            numbers.append(int(line.split()[1]))
    assert numbers == sorted(numbers), "the copies and the log are not in the order written"
    # The writer kept writing at the start of the emptied file (O_APPEND), not at its old offset.
    assert log.stat().st_size < sum(copy.stat().st_size for copy in copies)


def test_without_backups_a_log_is_only_emptied(tmp_path):
    log = tmp_path / "replica.log"
    log.write_bytes(b"x" * 100)
    rotate(log, backups=0)
    assert log.read_bytes() == b""
    assert list(tmp_path.iterdir()) == [log]


def test_only_logs_above_the_size_are_rotated(tmp_path):
    big = tmp_path / "default" / "iris" / "predictor" / "iris-predictor-00001-0.log"
    small = tmp_path / "default" / "iris" / "predictor" / "iris-predictor-00001-1.log"
    other = tmp_path / "default" / "notes.txt"
    big.parent.mkdir(parents=True)
    big.write_bytes(b"a\n" * 600)
    small.write_bytes(b"b\n" * 10)
    other.write_bytes(b"c" * 5000)
    assert rotate_large_logs(tmp_path, max_bytes=1000, backups=2) == [big]
    assert big.read_bytes() == b""
    assert big.with_name(big.name + ".1").read_bytes() == b"a\n" * 600
    assert small.read_bytes() == b"b\n" * 10
    assert other.stat().st_size == 5000


def test_the_platform_task_rotates_on_its_own(tmp_path):
    log = tmp_path / "zygote.log"
    log.write_bytes(b"z\n" * 1000)

    async def run_a_while() -> None:
        task = asyncio.create_task(rotate_logs_forever(tmp_path, max_bytes=100, backups=1, interval=0.05))
        for _ in range(600):  # up to 30 s, on however busy a machine
            await asyncio.sleep(0.05)
            if log.with_name("zygote.log.1").exists():
                break
        task.cancel()

    asyncio.run(run_a_while())
    assert log.with_name("zygote.log.1").read_bytes() == b"z\n" * 1000
    assert log.read_bytes() == b""


def test_up_refuses_a_size_that_is_not_one():
    result = subprocess.run(
        [sys.executable, "-m", "modelplane", "up", "--log-max-size", "lots"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "'lots' is not a size such as 64Mi" in result.stderr


def test_logs_follow_a_log_across_a_rotation(tmp_path):
    folder = tmp_path / "logs" / "default" / "iris" / "predictor"
    folder.mkdir(parents=True)
    log = folder / "iris-predictor-00001-0.log"
    log.write_bytes(b"first\n")
    follower = subprocess.Popen(
        [sys.executable, "-m", "modelplane", "logs", "iris", "--home", str(tmp_path), "-f"],
        stdout=subprocess.PIPE,
        bufsize=0,  # unbuffered, so select() sees every line still to read
    )

    def next_line() -> bytes:
        ready, _, _ = select.select([follower.stdout], [], [], 30)
        assert ready, "modelplane logs -f printed nothing for 30 s"
        return follower.stdout.readline()

    try:
        assert next_line() == b"first\n"  # it has started and follows from there
        with log.open("ab") as writer:
            writer.write(b"second, printed from the copy\n")
            writer.flush()
            rotate(log, backups=2)
            writer.write(b"third, in the emptied log\n")
        assert next_line() == b"second, printed from the copy\n"
        assert next_line() == b"third, in the emptied log\n"
    finally:
        follower.kill()
        follower.wait()
