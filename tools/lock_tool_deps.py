#!/usr/bin/env python3
"""Locks the helper tool's dependencies (python/tool_requirements.in) for every exec platform.

Writes rules/private/tool_wheels.json, which the module extension reads to fetch the wheels by sha256. Uses the
same lock code as `bazel run //stacks:lock`. Run it from the dev environment (tools/test sets one up):

    PYTHONPATH=python ~/.cache/rules_venvstacks/devenv-*/bin/python tools/lock_tool_deps.py
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from stacktool.contract import LayerSpec, StackSpec
from stacktool.lock import Resolver, lock_stack

ROOT = Path(__file__).resolve().parent.parent
TOOL_PYTHON = "3.11"


def exec_platforms() -> tuple[str, ...]:
    """The platforms the helper tool can run on: those with a python-build-standalone runtime of TOOL_PYTHON."""
    pbs = json.loads((ROOT / "rules" / "private" / "pbs_runtimes.json").read_text())
    return tuple(sorted(pbs["pythons"][TOOL_PYTHON]["sha256"]))


def main() -> int:
    requirements = [
        line.strip()
        for line in (ROOT / "python" / "tool_requirements.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    layer = LayerSpec(
        key="tools:stacktool",
        kind="runtime",
        env_name="stacktool",
        python=TOOL_PYTHON,
        python_version="",
        requirements=tuple(requirements),
        requirements_files=(),
        dependency_groups=(),
        lower=(),
        platforms=exec_platforms(),
        pylock="pylock.stacktool.toml",
        linux_target="glibc@2.28",
        macosx_target="12.0",
        versioned=False,
    )
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:
        sys.exit("tools/lock_tool_deps.py: run it with the dev environment's python (it has uv)")
    files = lock_stack(StackSpec("//tools:lock_tool_deps", "", (layer,)), Resolver(Path(uv), Path(sys.executable)), {})
    wheels = json.loads(files["index"])["layers"]["tools:stacktool"]["wheels"]
    out = {
        "python": TOOL_PYTHON,
        "requirements": requirements,
        "wheels": {
            platform: [{k: w[k] for k in ("name", "version", "filename", "url", "sha256")} for w in entries]
            for platform, entries in wheels.items()
        },
    }
    path = ROOT / "rules" / "private" / "tool_wheels.json"
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
