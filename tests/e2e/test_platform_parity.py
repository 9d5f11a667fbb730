"""The platform table is written twice, once per side of the Starlark/Python boundary (Starlark needs it at
loading time, Python when locking and installing): platforms/platforms.bzl and python/stacktool/platforms.py.
Every other list of platforms is held equal to them here: the layer metadata schema's enum, the keys of the
python-build-standalone table, the helper tool's exec platforms."""

from __future__ import annotations

import json

from harness import ROOT, Workspace
from lock_tool_deps import exec_platforms
from stacktool.metadata import SCHEMA_PATH
from stacktool.platforms import PLATFORMS


def starlark_table(workspace) -> dict[str, dict[str, object]]:
    ws: Workspace = workspace("platform_name")
    ws.bazel("build", "@rules_venvstacks//platforms:table")
    files = ws.bazel("cquery", "--output=files", "@rules_venvstacks//platforms:table").stdout.split()
    return json.loads((ws.path / files[0]).read_text())  # type: ignore[no-any-return]


def test_starlark_and_python_tables_name_the_same_platforms(workspace) -> None:
    starlark = starlark_table(workspace)
    assert sorted(starlark) == sorted(PLATFORMS)
    for name, entry in starlark.items():
        python = PLATFORMS[name]
        assert (entry["name"], entry["os"], entry["cpu"]) == (python.name, python.os, python.arch), name
        assert entry["constraints"] == [f"@platforms//os:{python.os}", f"@platforms//cpu:{python.arch}"]


def test_schema_enum_and_pbs_table_list_the_same_platforms() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert sorted(schema["properties"]["target_platform"]["enum"]) == sorted(PLATFORMS)
    pbs = json.loads((ROOT / "rules" / "private" / "pbs_runtimes.json").read_text())
    assert sorted(pbs["triples"]) == sorted(PLATFORMS)
    for entry in pbs["pythons"].values():
        assert set(entry["sha256"]) <= set(PLATFORMS)


def test_helper_tool_exec_platforms_are_target_platforms() -> None:
    tool = json.loads((ROOT / "rules" / "private" / "tool_wheels.json").read_text())
    assert sorted(tool["wheels"]) == list(exec_platforms())
    assert set(exec_platforms()) <= set(PLATFORMS)
