"""The python-build-standalone table (rules/private/pbs_runtimes.json) the module extension reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

from stacktool.platforms import PLATFORMS

TABLE = json.loads((Path(__file__).resolve().parents[2] / "rules/private/pbs_runtimes.json").read_text())

# Published sha256 values, checked against /work/shared/pbs-facts.md (rules_python's versions.bzl, release 20250702).
KNOWN = {
    ("3.11", "linux_x86_64"): "e04944e70637f9d82022c9a41ae31de306b0d5bbd3fb64b9eb3261b8b5e0b30c",
    ("3.12", "macosx_arm64"): "5f8e9480d0981268961e63729de1c9b037cabfe030949943be293f0d3e3e7703",
    ("3.13", "win_amd64"): "f11f915437250657019c71adb81ec523d2932c2c3ea4441b592aa3bdce0e7ef7",
    ("3.13", "linux_aarch64"): "272a8817921856d7ac47f44c076fb62fbaf5649aa1d97b2d67a3a6adee969ff0",
}


def test_every_platform_has_a_pbs_triple() -> None:
    assert set(TABLE["triples"]) == set(PLATFORMS)
    for name, triple in TABLE["triples"].items():
        arch = "x86_64" if PLATFORMS[name].arch == "x86_64" else "aarch64"
        os_part = {"linux": "unknown-linux-gnu", "macos": "apple-darwin", "windows": "pc-windows-msvc"}
        assert triple == f"{arch}-{os_part[PLATFORMS[name].os]}"


def test_entries_are_well_formed() -> None:
    for python, entry in TABLE["pythons"].items():
        assert re.fullmatch(r"3\.\d+", python)
        assert entry["version"].startswith(python + ".")
        assert re.fullmatch(r"\d{8}", entry["release"])
        assert set(entry["sha256"]) <= set(PLATFORMS)
        assert {"linux_x86_64", "linux_aarch64", "macosx_arm64", "macosx_x86_64", "win_amd64"} <= set(entry["sha256"])
        for sha256 in entry["sha256"].values():
            assert re.fullmatch(r"[0-9a-f]{64}", sha256)
    all_sha256 = [s for entry in TABLE["pythons"].values() for s in entry["sha256"].values()]
    assert len(all_sha256) == len(set(all_sha256))


def test_published_values() -> None:
    for (python, platform), sha256 in KNOWN.items():
        assert TABLE["pythons"][python]["sha256"][platform] == sha256
