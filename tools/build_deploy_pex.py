#!/usr/bin/env python3
"""Builds the deploy tool as one file, deploy.pex, with pex from the helper tool's locked wheels (docs/deploy.md).

    $(python3 tools/devenv.py) tools/build_deploy_pex.py [--out deploy.pex] [--platform linux_x86_64 ...]

Its entry point is `stacktool deploy` (python/stacktool/cli.py: deploy_main): run it with a stack's own runtime,
`<target>/current/<runtime>/bin/python3 deploy.pex install SOURCE --target T`, on a machine with neither Bazel nor
network. Its dependencies are the wheels rules/private/tool_wheels.json locks for the helper tool (without uv and
installer, which deploying does not use), each downloaded by URL and checked against its sha256, one set per
platform (pex `--platform`, so the file serves every POSIX platform the tool is locked for); pex itself is pinned
by sha256 below. The compiled wheels (zstandard, rpds-py) are the tool's Python's (3.11): the pex runs with a
CPython 3.11 runtime. pex resolves nothing from an index (`--no-pypi --intransitive`) and writes the same bytes for
the same inputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path.home() / ".cache" / "rules_venvstacks" / "deploy-pex"
PEX_WHEEL = "pex-2.105.2-py2.py35.py36.py37.py38.py39.py310.py311-none-any.whl"
PEX_URL = (
    "https://files.pythonhosted.org/packages/43/8c/7e073f41b8c0935e4fa8471902a2917b6c14a85e19ead116cd18c7c6d0fe/"
    + PEX_WHEEL
)
PEX_SHA256 = "5a4d73fbeab30ddf70e360971cb19b9fa80b2a29cfe83e786215fcdd5ef1af9d"
NOT_NEEDED = {"uv", "installer"}  # tool dependencies deploying never imports
# pex's abbreviated platform per platform the deploy pex serves (deploy targets need symlinks: not Windows).
PEX_PLATFORMS = {
    "linux_x86_64": "manylinux2014_x86_64",
    "linux_aarch64": "manylinux2014_aarch64",
    "macosx_arm64": "macosx_11_0_arm64",
    "macosx_x86_64": "macosx_10_12_x86_64",
}


def fetched(url: str, name: str, sha256: str) -> Path:
    """The file at `url`, downloaded once into the cache and checked against `sha256` every time."""
    path = CACHE / "wheels" / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(name + ".partial")
        with urllib.request.urlopen(url, timeout=120) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out)
        partial.replace(path)
    with path.open("rb") as stream:
        actual = hashlib.file_digest(stream, "sha256").hexdigest()
    if actual != sha256:
        path.unlink()
        sys.exit(f"{url}: sha256 {actual}, expected {sha256} (the download was removed; run again)")
    return path


def pex_tool() -> Path:
    """pex, unpacked from its pinned wheel (a pure wheel: unpacking is installing)."""
    home = CACHE / PEX_WHEEL.removesuffix(".whl")
    if not home.is_dir():
        wheel = fetched(PEX_URL, PEX_WHEEL, PEX_SHA256)
        partial = Path(tempfile.mkdtemp(dir=CACHE))
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(partial)
        partial.rename(home)
    return home


def sources(staging: Path) -> Path:
    """python/stacktool (code, schemas, injected files) without caches."""
    shutil.copytree(ROOT / "python" / "stacktool", staging / "stacktool", ignore=shutil.ignore_patterns("__pycache__"))
    return staging


def build(out: Path, platforms: list[str]) -> None:
    lock = json.loads((ROOT / "rules" / "private" / "tool_wheels.json").read_text())
    python = lock["python"].replace(".", "")
    requirements: set[str] = set()
    for platform in platforms:
        for wheel in lock["wheels"][platform]:
            if wheel["name"] not in NOT_NEEDED:
                fetched(wheel["url"], wheel["filename"], wheel["sha256"])
                requirements.add(f"{wheel['name']}=={wheel['version']}")
    with tempfile.TemporaryDirectory() as staging:
        command = [
            sys.executable, "-s", "-m", "pex", "--no-pypi", "--find-links", str(CACHE / "wheels"), "--intransitive",
            "--sources-directory", str(sources(Path(staging))), "--entry-point", "stacktool.cli:deploy_main",
            "--python-shebang", "/usr/bin/env python3", "--no-compile", "--output-file", str(out),
        ]  # fmt: skip
        for platform in platforms:
            command += ["--platform", f"{PEX_PLATFORMS[platform]}-cp-{python}-cp{python}"]
        env = {"PYTHONPATH": str(pex_tool()), "PEX_ROOT": str(CACHE / "pex_root"), "PATH": "/usr/bin:/bin"}
        subprocess.run([*command, *sorted(requirements)], check=True, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("deploy.pex"), help="the pex to write (default: deploy.pex)")
    parser.add_argument(
        "--platform",
        action="append",
        choices=sorted(PEX_PLATFORMS),
        help="a platform the pex serves (default: all of them)",
    )
    args = parser.parse_args()
    build(args.out.absolute(), args.platform or sorted(PEX_PLATFORMS))
    with args.out.open("rb") as stream:
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
