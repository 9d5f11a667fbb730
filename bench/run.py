"""Runs the benchmarks (bench/run [name...]); each prints its table and writes bench/out/<name>.json; then
bench/chart.py draws every result in bench/out into bench/out/benchmarks.svg."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

BENCHMARKS = {
    "launcher": "bench_launcher",
    "remote": "bench_remote",
    "peers": "bench_peers",
    "images": "bench_images",
    "deploy": "bench_deploy",
    "pytorch": "bench_pytorch",
    "compression": "bench_compression",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run, of {', '.join(BENCHMARKS)} (default: all)")
    names = parser.parse_args().names or list(BENCHMARKS)
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}")
    status = 0
    for name in names:
        print(f"\n### {name}", flush=True)
        status |= importlib.import_module(BENCHMARKS[name]).main()
    print(f"\nchart: {importlib.import_module('chart').render_all()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
