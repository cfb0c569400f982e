"""plugport doctor: the sandbox layer table, and the seccomp inventory with --syscalls."""

from __future__ import annotations

import pytest

from plugport.cli._output import out
from plugport.runtime.sandbox import doctor
from plugport.runtime.sandbox.syscall_policy import RULES
from tests.conftest import RunCli


def test_doctor_lists_every_layer(run_cli: RunCli) -> None:
    result = run_cli("doctor")
    assert result.exit_code == 0, result.output
    layers = doctor()
    for layer in layers:
        assert layer.name in result.output
    if all(layer.available for layer in layers):
        assert "every layer is available" in result.output
        assert run_cli("doctor", "--strict").exit_code == 0
    else:
        assert "strict mode would refuse" in result.output
        assert run_cli("doctor", "--strict").exit_code == 1


def test_doctor_syscalls_prints_the_whole_inventory(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # one line per syscall
    monkeypatch.setattr(out, "width", 300)  # the console may have measured the width already
    plain = run_cli("doctor")
    result = run_cli("doctor", "--syscalls")
    assert result.exit_code == 0, result.output
    rows = {
        cells[0]: cells
        for line in result.output.splitlines()
        if len(cells := [cell.strip() for cell in line.strip("│ ").split("│")]) == 6
    }
    assert set(RULES) <= set(rows)
    assert rows["prlimit64"][1:5] == ["302", "261", "worker only", "EPERM"]
    assert rows["inotify_add_watch"][3:5] == ["refused", "EPERM"]
    assert rows["clone3"][3:5] == ["refused", "ENOSYS"]
    assert rows["read"][1:5] == ["0", "63", "allowed", ""]
    assert rows["fork"][1:3] == ["57", "-"]  # no fork on aarch64
    for layer in doctor():
        assert layer.name in result.output  # the layer table is still there
    assert "prlimit64" not in plain.output
