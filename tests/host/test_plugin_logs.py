"""A plugin's log file: capped with one rotation, read back across it, followed through it."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import pytest

from plugport.host.plugin_logs import LogRecord, PluginLogs
from plugport.runtime.activity import Activity


def record(n: int) -> LogRecord:
    return LogRecord(float(n), "info", f"line {n:04d}", {"n": n})


def test_log_activities_become_lines_and_nothing_else(tmp_path: Path) -> None:
    logs = PluginLogs(tmp_path / "logs")
    logs.write(Activity("acme.a", "log", "warning", "", "careful", None, {"k": "v"}, at=5.0))
    logs.write(Activity("acme.a", "capability", "storage.get", "granted", "", 0.1))
    logs.write(Activity("acme.a", "audit", "crash", "", "it died"))
    logs.close()
    assert logs.tail("acme.a", 10) == [LogRecord(5.0, "warning", "careful", {"k": "v"})]
    assert (tmp_path / "logs" / "acme.a.jsonl").stat().st_mode & 0o777 == 0o600


def test_a_chatty_plugin_is_capped_at_twice_the_limit(tmp_path: Path) -> None:
    logs = PluginLogs(tmp_path, max_bytes=1000)
    for n in range(500):
        logs.append("acme.a", record(n))
    logs.close()
    current, rotated = tmp_path / "acme.a.jsonl", tmp_path / "acme.a.jsonl.1"
    assert current.stat().st_size <= 1000
    assert rotated.stat().st_size <= 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acme.a.jsonl", "acme.a.jsonl.1"]
    tail = logs.tail("acme.a", 5)
    assert [r.message for r in tail] == [f"line {n:04d}" for n in range(495, 500)]
    everything = logs.tail("acme.a", 10_000)  # both files, oldest first, no gap between them
    numbers = [r.fields["n"] for r in everything]
    assert numbers == list(range(numbers[0], 500))


def test_a_torn_line_is_skipped_and_the_next_one_kept(tmp_path: Path) -> None:
    logs = PluginLogs(tmp_path, max_bytes=10_000)
    logs.append("acme.a", record(1))
    logs.close()
    with (tmp_path / "acme.a.jsonl").open("a") as file:
        file.write('{"at": 2, "level": "in')  # a crash mid-write
    again = PluginLogs(tmp_path, max_bytes=10_000)
    again.append("acme.a", record(3))
    again.close()
    assert [r.fields.get("n") for r in again.tail("acme.a", 10)] == [1, 3]
    assert again.exists("acme.a")
    assert not again.exists("acme.b")


def test_purge_removes_both_files(tmp_path: Path) -> None:
    logs = PluginLogs(tmp_path, max_bytes=200)
    for n in range(20):
        logs.append("acme.a", record(n))
        logs.append("acme.b", record(n))
    logs.purge("acme.a")
    assert not logs.exists("acme.a")
    assert logs.exists("acme.b")
    logs.close()


def test_bad_cap_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes must be at least 1"):
        PluginLogs(tmp_path, max_bytes=0)
    assert list(tmp_path.iterdir()) == []


def test_follow_starts_at_the_end_and_reads_through_rotations(tmp_path: Path) -> None:
    writer = PluginLogs(tmp_path, max_bytes=300)
    writer.append("acme.a", record(0))  # before following: not shown
    seen: queue.Queue[LogRecord] = queue.Queue()
    reader = PluginLogs(tmp_path)

    def follow() -> None:
        for item in reader.follow("acme.a", poll_s=0.01):
            seen.put(item)
            if item.fields["n"] == 40:
                return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    time.sleep(0.2)
    for n in range(1, 41):
        writer.append("acme.a", record(n))
        if n % 2 == 0:  # at most one rotation between two reads (see follow's docstring)
            time.sleep(0.05)
    thread.join(timeout=10)
    writer.close()
    assert not thread.is_alive()
    got = [seen.get_nowait().fields["n"] for _ in range(seen.qsize())]
    assert (tmp_path / "acme.a.jsonl.1").exists()  # it did rotate, several times
    assert got == list(range(1, 41))
