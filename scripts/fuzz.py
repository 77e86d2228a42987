"""make fuzz: the property-based fuzz targets of the controller, a long campaign.

Runs ``ros2_ws/src/moe_loco_controller/test/test_fuzz.py`` with ``--examples`` cases per target
(default 100000; ``make test`` runs the same targets with 60), prints each target's cases and
crashes and, last, ``fuzz cases=<n> crashes=<k> targets=<t>``. Exit status 1 if anything crashed
(the first crashes of each target, with their input, are in the pytest output above).

    make fuzz                                  # 100000 cases per target
    make fuzz FUZZ_ARGS="--examples 20000 -k metadata"
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ROOT / "ros2_ws/src/moe_loco_controller/test/test_fuzz.py"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=100_000, help="cases per target")
    ap.add_argument("-k", default=None, help="only the targets matching (pytest -k)")
    a = ap.parse_args()
    if a.examples < 1:
        print("fuzz: --examples must be >= 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as report:
        env = {
            **os.environ,
            "MOE_LOCO_FUZZ_EXAMPLES": str(a.examples),
            "MOE_LOCO_FUZZ_REPORT": report,
        }
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", str(TARGETS),
               "--timeout=0"] + (["-k", a.k] if a.k else [])  # fmt: skip
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
        results = {p.stem: json.loads(p.read_text()) for p in sorted(Path(report).glob("*.json"))}
    for name, r in results.items():
        print(f"fuzz {name}: cases={r['cases']} crashes={r['crashes']}")
    cases = sum(r["cases"] for r in results.values())
    crashes = sum(r["crashes"] for r in results.values())
    print(f"fuzz cases={cases} crashes={crashes} targets={len(results)}")
    return 1 if crashes or rc not in (0, 5) or not results else 0


if __name__ == "__main__":
    sys.exit(main())
