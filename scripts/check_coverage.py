"""Combine coverage data files and fail unless every module of the integration reaches the floor.

Usage: .venv/bin/python scripts/check_coverage.py DATA_FILE... [--fail-under PERCENT]
(scripts/test passes the agent's and the integration's runs). Prints the modules below 100 %.
A total would hide a weak module behind strong ones, hence one check per file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import coverage

ROOT = Path(__file__).resolve().parent.parent
FLOOR = 95.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("data_files", nargs="+", type=Path)
    parser.add_argument("--fail-under", type=float, default=FLOOR)
    args = parser.parse_args()
    missing = [str(path) for path in args.data_files if not path.is_file()]
    if missing:
        print(f"check_coverage: no coverage data in {', '.join(missing)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        combined = coverage.Coverage(
            data_file=str(Path(tmp) / ".coverage"), config_file=str(ROOT / "pyproject.toml")
        )
        combined.combine([str(path) for path in args.data_files], keep=True)
        combined.save()
        below: list[tuple[str, float]] = []
        rows: list[tuple[str, float]] = []
        for source in sorted((ROOT / "custom_components" / "pi_secure_ws").rglob("*.py")):
            name = str(source.relative_to(ROOT))
            # A module no test imported counts with every statement missed.
            _, statements, _, missed, _ = combined.analysis2(str(source))
            percent = (
                100.0 * (len(statements) - len(missed)) / len(statements) if statements else 100.0
            )
            rows.append((name, percent))
        for name, percent in rows:
            if percent < 100.0:
                print(f"  {percent:5.1f} %  {name}")
            if percent < args.fail_under:
                below.append((name, percent))
    passed = len(rows) - len(below)
    print(f"check_coverage: {len(rows)} modules, {passed} at {args.fail_under:g} % or more")
    if below:
        print(
            "check_coverage: FAILED, below the floor: "
            + ", ".join(f"{name} ({percent:.1f} %)" for name, percent in below),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
