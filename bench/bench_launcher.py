#!/usr/bin/env python3
"""Benchmark of tools/bazel: provisioning the offline Bazel root from nothing, and the launcher's overhead per call.

Provisioning runs with a throw-away XDG_CACHE_HOME (the real root is left alone). The overhead is the time of
`tools/bazel version` minus the same `bazel --version` run directly inside the root, best of 10.
"""

from __future__ import annotations

import os
import subprocess
import sys

from common import ROOT, Report, Row, best_of, machine_facts, scratch, timed

BAZEL = str(ROOT / "tools" / "bazel")


def main() -> int:
    report = Report("tools/bazel (offline Bazel launcher)", facts=machine_facts())
    root = subprocess.run([BAZEL, "--print-root"], capture_output=True, text=True, check=True).stdout.strip()
    direct = ["bwrap", "--bind", root, "/", "--proc", "/proc", "--dev", "/dev", "/usr/bin/bazel", "--version"]
    through = best_of(10, lambda: subprocess.run([BAZEL, "version"], capture_output=True, check=True))
    inside = best_of(10, lambda: subprocess.run(direct, capture_output=True, check=True))
    report.add(Row("tools/bazel version (provisioned root)", through))
    report.add(Row("bazel --version run directly in the root", inside))
    report.add(Row("launcher overhead per call", through - inside, None, "< 1 s"))
    with scratch("bench-launcher-") as cache:
        env = dict(os.environ, XDG_CACHE_HOME=str(cache))
        env.pop("BAZEL_REAL", None)
        provision = timed(
            lambda: subprocess.run([BAZEL, "version"], env=env, capture_output=True, check=True, cwd=cache)
        )
        report.add(Row("provision the root from nothing (incl. local runtimes)", provision))
    report.save("launcher")
    return 0


if __name__ == "__main__":
    sys.exit(main())
