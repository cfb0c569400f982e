"""Sandboxed activation and call round trip, with real workers from a real zygote.

Prints JSON. Measures: first activation including the zygote's start, cold activation with a
warm zygote (fork + full sandbox + plugin load + initialize + ready), and the round trip of a
no-op hook. Run: ``.venv/bin/python benchmarks/runtime.py --json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from plugport.runtime.launcher import ZygoteLauncher
from plugport.runtime.process import PluginProcess
from plugport.runtime.protocol import WorkerSpec

PLUGIN = """
from plugport.sdk import Plugin, hook


class Noop(Plugin):
    @hook("noop")
    async def noop(self):
        return None
"""


def _percentiles(samples_us: list[float]) -> dict[str, float]:
    ordered = sorted(samples_us)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 1)

    return {"p50": round(statistics.median(ordered), 1), "p95": pick(0.95), "p99": pick(0.99)}


async def _broker(capability: str, method: str, args: list[Any], kwargs: Any) -> Any:
    return None


async def _activate(launcher: ZygoteLauncher, spec: WorkerSpec) -> PluginProcess:
    process = PluginProcess(spec.plugin, await launcher.launch(spec), _broker)
    await process.start()
    return process


async def run(activations: int, calls: int, policy: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "code").mkdir()
        (root / "code" / "noop.py").write_text(PLUGIN)
        (root / "data").mkdir()
        spec = WorkerSpec(
            plugin="bench.noop",
            code_dir=str(root / "code"),
            data_dir=str(root / "data"),
            entry="noop:Noop",
            memory_mb=256,
            cpu_seconds=60,
            max_concurrency=4,
            sandbox=policy,
        )
        launcher = ZygoteLauncher()
        try:
            started = time.perf_counter()
            first = await _activate(launcher, spec)
            first_ms = (time.perf_counter() - started) * 1000
            sandbox = first.ready.sandbox if first.ready else {}
            round_trips = []
            for _ in range(calls):
                t0 = time.perf_counter_ns()
                await first.call("hook", "noop", timeout_ms=5000)
                round_trips.append((time.perf_counter_ns() - t0) / 1000)
            await first.stop()
            cold = []
            for _ in range(activations):
                t0 = time.perf_counter()
                process = await _activate(launcher, spec)
                cold.append((time.perf_counter() - t0) * 1000)
                await process.stop()
        finally:
            await launcher.close()
    cold_ms = _percentiles(cold)
    return {
        "benchmark": "runtime",
        "sandbox_policy": policy,
        "sandbox_layers": {k: v.split(":")[0] for k, v in sandbox.items()},
        "first_activation_with_zygote_ms": round(first_ms, 2),
        "cold_activation_warm_zygote_ms": cold_ms,
        "noop_round_trip_us": _percentiles(round_trips),
        "activations": activations,
        "calls": calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON on one line")
    parser.add_argument("--activations", type=int, default=30)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--policy", default="strict", choices=["strict", "best-effort"])
    args = parser.parse_args()
    result = asyncio.run(run(args.activations, args.calls, args.policy))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
