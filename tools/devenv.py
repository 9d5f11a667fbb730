#!/usr/bin/env python3
"""The development environment: a private virtualenv with tools/requirements-dev.txt (ruff, pytest, the helper
tool's dependencies, uv), rebuilt when that file changes. Prints its interpreter's path.

tools/test and bench/run use it; so can you: `$(python3 tools/devenv.py) -m pytest tests/unit`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rules_venvstacks"


def devenv() -> Path:
    """The dev environment's directory, created on first use."""
    requirements = ROOT / "tools" / "requirements-dev.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    venv = CACHE / f"devenv-{digest}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        print(f"installing the dev environment into {venv}", file=sys.stderr, flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(requirements)], check=True)
        (venv / ".complete").write_text(digest)
    return venv


if __name__ == "__main__":
    print(devenv() / "bin" / "python")
