"""Integrations benchmarks (issue 17). Prints one JSON object with a ``targets`` block; each
part is a function in its own module (``_integrations_outbound.py``: outbound webhooks).

Run: ``.venv/bin/python benchmarks/integrations.py --json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _integrations_outbound import webhook_deliveries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="One line of JSON.")
    parser.add_argument("--quick", action="store_true", help="A smoke run (fewer deliveries).")
    args = parser.parse_args()
    targets = {}
    targets.update(webhook_deliveries(300 if args.quick else 2000))
    result = {"targets": targets}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
