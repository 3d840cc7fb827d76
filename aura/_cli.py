"""The `aura` console script."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _data_dir(value: str | None) -> Path:
    return Path(value or os.environ.get("AURA_DATA") or "./aura-data")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aura", description="Durable AI-agent missions.")
    parser.add_argument("--data", help="data directory (default $AURA_DATA or ./aura-data)")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="crash a writer mid-work and show nothing is lost")
    demo.add_argument("--data", dest="sub_data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data = _data_dir(getattr(args, "sub_data", None) or args.data)
    if args.command == "demo":
        from ._demo import run

        return run(data)
    parser.error(f"unknown command {args.command}")  # pragma: no cover - argparse exits
    return 2


if __name__ == "__main__":
    sys.exit(main())
