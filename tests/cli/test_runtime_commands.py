"""plugport doctor: the sandbox layer table."""

from __future__ import annotations

from plugport.runtime.sandbox import doctor
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
