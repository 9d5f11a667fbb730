"""The stacked example end to end: a diamond of versioned frameworks in C3 order, a package launch module with a
support module, a module named after its file, a disabled layer; then a relock after one requirement change, and
both versions of the stack deployed side by side. Real Bazel, real wheels from PyPI.

The tests share one copy of the example and run in file order: those of version 1 first, then the relock (the
`relocked` fixture changes numpy in `numerics`), then the two versions deployed together.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from harness import EXAMPLES, ROOT, Workspace, copy_workspace
from stacktool.digest import sha256_of

SCHEMA = json.loads((ROOT / "python/stacktool/schemas/layer-metadata.schema.json").read_text())
PLATFORM = "linux_x86_64"
# Every locked layer of the example: lock index key -> target name (the `<name>.layer` directory in bazel-bin).
LOCKED = {f"stacks:{name}": name for name in ("cpython3_11", "numerics", "tables", "plots", "report", "summary")}
NUMPY_BEFORE, NUMPY_AFTER = "2.2.6", "2.2.5"

# Imports numpy and runs a LAPACK routine (OpenBLAS from numpy.libs); prints what it loaded from numpy.libs.
NUMPY_PROBE = """
import json, numpy, numpy.linalg
inverse = numpy.linalg.inv(numpy.array([[2.0, 0.0], [0.0, 4.0]])).tolist()
with open("/proc/self/maps") as maps:
    # address perms offset dev inode path (the path may hold spaces)
    libs = sorted({line.split(maxsplit=5)[5].rstrip("\\n") for line in maps if "/numpy.libs/" in line})
print(json.dumps({"version": numpy.__version__, "file": numpy.__file__, "inverse": inverse, "libs": libs}))
"""


def report_layers(n: int) -> str:
    """What app-report prints for its sys.path at lock version n: C3 order, nearest first, the runtime (@1) last."""
    return f"layers: app-report@{n} framework-tables@{n} framework-plots@{n} framework-numerics@{n} cpython3_11@1"


@pytest.fixture(scope="module")
def stacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    base = tmp_path_factory.mktemp("stacked")
    ws = copy_workspace(EXAMPLES / "stacked", base / "stacked", base / "output_base")
    yield ws
    ws.discard()


def read_index(ws: Workspace) -> dict[str, Any]:
    index: dict[str, Any] = json.loads((ws.path / "stacks" / "venvstacks_lock.json").read_text())
    return index


def metadata_file(ws: Workspace, install_target: str) -> Path:
    """The published metadata of a layer of the example, by install target (`framework-numerics@2`, `app-summary`)."""
    env_name = install_target.split("@")[0]
    target = env_name.removeprefix("framework-").removeprefix("app-")
    return ws.path / "bazel-bin" / "stacks" / f"{target}.layer" / f"{install_target}-{PLATFORM}.json"


def read_metadata(path: Path) -> dict[str, Any]:
    metadata: dict[str, Any] = json.loads(path.read_text())
    return metadata


def stack_of(ws: Workspace, top: str) -> list[Path]:
    """The metadata files of a layer's stack, lowest first (the runtime first), as its own metadata lists them."""
    metadata = read_metadata(metadata_file(ws, top))
    lower = [*metadata["required_layers"], metadata["runtime_layer"]]
    return [metadata_file(ws, target) for target in [*reversed(lower), top]]


def venvstacks_module_hash(path: Path) -> str:
    """venvstacks' `hash_module` (venvstacks 0.8.0, _hash_content.py), written out independently of stacktool: a file
    is `sha256:` + sha256(name + "sha256:<content>"); a package `sha256/` + sha256 over a sorted top-down walk (each
    directory's name, then per file its name and "sha256:<content>")."""

    def content(file: Path) -> str:
        return "sha256:" + hashlib.sha256(file.read_bytes()).hexdigest()

    digest = hashlib.sha256()
    if path.is_file():
        digest.update(path.name.encode() + content(path).encode())
        return "sha256:" + digest.hexdigest()
    for directory, subdirs, files in os.walk(path):
        subdirs.sort()
        digest.update(Path(directory).name.encode())
        for name in sorted(files):
            digest.update(name.encode() + content(Path(directory) / name).encode())
    return "sha256/" + digest.hexdigest()


# 1. Build, run and test (version 1, as the example is checked in).


def test_all_tests_pass_and_the_disabled_layer_is_skipped(stacked: Workspace) -> None:
    result = stacked.bazel("test", "//stacks:all")
    output = result.stdout + result.stderr
    assert "Executed 7 out of 8 tests: 7 tests pass and 1 was skipped." in output
    assert re.search(r"^//stacks:experimental_test\s+SKIPPED$", output, re.MULTILINE), output
    for name in [*LOCKED.values(), "lock"]:
        assert re.search(rf"^//stacks:{name}_test\s+PASSED in ", output, re.MULTILINE), (name, output)


def test_report_runs_with_its_layers_in_c3_order(stacked: Workspace) -> None:
    lines = stacked.bazel("run", "//stacks:report").stdout.splitlines()
    # From stack_info (the support module), which reads the running app's sys.path.
    assert lines[0] == report_layers(1)
    assert lines[1].split() == ["n", "n!"]
    assert [line.split() for line in lines[3:8]] == [["1", "1"], ["2", "2"], ["3", "6"], ["4", "24"], ["5", "120"]]
    # packaging is installed into the runtime layer itself.
    assert lines[8] == f"numpy {NUMPY_BEFORE}, tabulate 0.9.0, packaging 24.2"


def test_summary_runs_as_the_module_named_after_its_file(stacked: Workspace) -> None:
    result = stacked.bazel("run", "//stacks:summary")
    assert result.stdout.strip() == f"summary: mean 0.50 (numpy {NUMPY_BEFORE}, six 1.17.0)"
    metadata = read_metadata(metadata_file(stacked, "app-summary"))
    assert metadata["app_launch_module"] == "summary"
    assert metadata["app_launch_module_hash"] == venvstacks_module_hash(
        stacked.path / "stacks" / "launch_modules" / "summary.py"
    )


# 2. Published metadata and the lock index.


def test_report_metadata_names_its_versions_and_module_hashes(stacked: Workspace) -> None:
    stacked.bazel("build", "//stacks:all")
    metadata = read_metadata(metadata_file(stacked, "app-report@1"))
    jsonschema.validate(metadata, SCHEMA)
    assert metadata["install_target"] == "app-report@1"
    assert metadata["lock_version"] == 1
    # venvstacks' published fields, as its docs name them: frameworks in C3 order, the runtime apart
    assert metadata["layer_name"] == "app-report"
    assert metadata["required_layers"] == ["framework-tables@1", "framework-plots@1", "framework-numerics@1"]
    assert metadata["runtime_layer"] == "cpython3_11@1"
    assert re.fullmatch(r"cpython@3\.11\.[0-9]+", metadata["python_implementation"])
    assert metadata["bound_to_implementation"] is False  # only runtimes, and every layer on Windows
    assert metadata["target_platform"] == "linux_x86_64"
    assert metadata["app_launch_module"] == "report"
    archive = metadata_file(stacked, "app-report@1").parent / metadata["archive_name"]
    assert metadata["archive_hashes"] == {"sha256": sha256_of(archive)}
    assert metadata["archive_size"] == archive.stat().st_size
    stacks = stacked.path / "stacks"
    assert metadata["app_launch_module_hash"].startswith("sha256/")  # a package
    assert metadata["app_launch_module_hash"] == venvstacks_module_hash(stacks / "report")
    assert metadata["app_support_modules"] == [
        {"name": "stack_info", "hash": venvstacks_module_hash(stacks / "stack_info.py")}
    ]
    assert metadata["app_support_modules"][0]["hash"].startswith("sha256:")
    entry = read_index(stacked)["layers"]["stacks:report"]
    for key in ("install_target", "lock_version", "locked_at", "requirements_hash"):
        assert metadata[key] == entry[key], key
    for target in [*metadata["required_layers"], metadata["runtime_layer"]]:
        assert read_metadata(metadata_file(stacked, target))["install_target"] == target


def test_the_disabled_layer_is_neither_locked_nor_built(stacked: Workspace) -> None:
    stacked.bazel("build", "//stacks:all")
    assert set(read_index(stacked)["layers"]) == set(LOCKED)
    assert not list((stacked.path / "stacks").glob("pylock.*experimental*"))
    bazel_bin = stacked.path / "bazel-bin" / "stacks"
    assert sorted(p.name for p in bazel_bin.glob("*.layer")) == sorted(f"{name}.layer" for name in LOCKED.values())
    assert not list(bazel_bin.glob("*/*experimental*"))


# 3. Relock after one requirement change.


@dataclass(frozen=True)
class Relock:
    stale_test: subprocess.CompletedProcess[str]  # bazel test //stacks:lock_test before relocking
    stale_log: str  # its test log
    before: dict[str, Any]  # the lock index of version 1
    after: dict[str, Any]  # the lock index after relocking
    rewritten: set[str]  # files of stacks/ the relock changed
    version_1: list[Path]  # version 1 of app-report's stack (metadata next to its archive), copied out, lowest first


@pytest.fixture(scope="module")
def relocked(stacked: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Relock:
    """Copies version 1 of app-report's stack out of bazel-bin, changes numpy in `numerics` and relocks."""
    stacked.bazel("build", "//stacks:report")
    copied = tmp_path_factory.mktemp("version-1")
    version_1 = []
    for metadata in stack_of(stacked, "app-report@1"):
        shutil.copy(metadata, copied)
        shutil.copy(metadata.parent / read_metadata(metadata)["archive_name"], copied)
        version_1.append(copied / metadata.name)
    stacks = stacked.path / "stacks"
    before = read_index(stacked)
    build = stacks / "BUILD.bazel"
    text = build.read_text()
    assert text.count(f'"numpy=={NUMPY_BEFORE}"') == 1
    build.write_text(text.replace(f'"numpy=={NUMPY_BEFORE}"', f'"numpy=={NUMPY_AFTER}"'))
    stale_test = stacked.bazel("test", "//stacks:lock_test", check=False)
    stale_log = (stacked.path / "bazel-testlogs" / "stacks" / "lock_test" / "test.log").read_text()
    files = {p.name: p.read_bytes() for p in stacks.iterdir() if p.is_file()}
    stacked.bazel("run", "//stacks:lock")
    rewritten = {p.name for p in stacks.iterdir() if p.is_file() and files.get(p.name) != p.read_bytes()}
    return Relock(stale_test, stale_log, before, read_index(stacked), rewritten, version_1)


def test_lock_test_fails_while_the_lock_is_stale(relocked: Relock) -> None:
    assert relocked.stale_test.returncode == 3, relocked.stale_test.stderr  # tests ran; one failed
    assert "//stacks:numerics changed since it was locked" in relocked.stale_log
    assert "run `bazel run //stacks:lock`" in relocked.stale_log


def test_relock_moves_exactly_numerics_and_the_layers_above_it(stacked: Workspace, relocked: Relock) -> None:
    before, after = relocked.before["layers"], relocked.after["layers"]
    assert {key: (e["lock_version"], e["install_target"]) for key, e in before.items()} == {
        "stacks:cpython3_11": (1, "cpython3_11@1"),
        "stacks:numerics": (1, "framework-numerics@1"),
        "stacks:tables": (1, "framework-tables@1"),
        "stacks:plots": (1, "framework-plots@1"),
        "stacks:report": (1, "app-report@1"),
        "stacks:summary": (1, "app-summary"),
    }
    assert {key: (e["lock_version"], e["install_target"]) for key, e in after.items()} == {
        "stacks:cpython3_11": (1, "cpython3_11@1"),
        "stacks:numerics": (2, "framework-numerics@2"),
        "stacks:tables": (2, "framework-tables@2"),  # its own requirements are unchanged: numerics below moved
        "stacks:plots": (2, "framework-plots@2"),
        "stacks:report": (2, "app-report@2"),
        "stacks:summary": (1, "app-summary"),  # not versioned
    }
    assert after["stacks:cpython3_11"] == before["stacks:cpython3_11"]  # the runtime's entry is untouched
    assert {key for key in after if after[key]["requirements_hash"] != before[key]["requirements_hash"]} == {
        "stacks:numerics"
    }
    assert [(w["name"], w["version"]) for w in after["stacks:numerics"]["wheels"][PLATFORM]] == [("numpy", NUMPY_AFTER)]
    # Only numerics' own lock and the index are rewritten.
    assert relocked.rewritten == {"pylock.framework-numerics.toml", "venvstacks_lock.json"}
    assert stacked.bazel("test", "//stacks:lock_test", check=False).returncode == 0


# 4. Both versions deployed side by side.


def test_both_versions_deploy_side_by_side_and_run(stacked: Workspace, relocked: Relock, tmp_path: Path) -> None:
    stacked.bazel("build", "//stacks:report")
    version_2 = stack_of(stacked, "app-report@2")
    top = read_metadata(version_2[-1])
    assert top["required_layers"] == ["framework-tables@2", "framework-plots@2", "framework-numerics@2"]
    assert top["runtime_layer"] == "cpython3_11@1"
    deployed = (tmp_path / "side by side").resolve()
    for stack in (relocked.version_1, version_2):
        result = stacked.bazel("run", "@rules_venvstacks//rules:deploy", "--", "--to", str(deployed), *map(str, stack))
        names = [read_metadata(m)["install_target"] for m in stack]
        assert result.stdout.splitlines() == [f"deployed {name} -> {deployed / name}" for name in names]
    assert sorted(p.name for p in deployed.iterdir() if not p.name.startswith(".")) == sorted(
        [
            "cpython3_11@1",
            *(f"{env}@{n}" for env in ("framework-numerics", "framework-tables", "framework-plots") for n in (1, 2)),
            "app-report@1",
            "app-report@2",
        ]
    )
    for version, numpy_version in ((1, NUMPY_BEFORE), (2, NUMPY_AFTER)):
        python = deployed / f"app-report@{version}" / "bin" / "python"
        env = {"PATH": "/usr/bin:/bin"}  # nothing of the build's environment
        run = subprocess.run(
            [str(python), "-m", "report"], cwd=deployed, env=env, capture_output=True, text=True, check=False
        )
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert lines[0] == report_layers(version)
        assert lines[-1] == f"numpy {numpy_version}, tabulate 0.9.0, packaging 24.2"
        # numpy loads the shared libraries of numpy.libs: each app those of its own framework-numerics.
        probe = subprocess.run(
            [str(python), "-c", NUMPY_PROBE], cwd=deployed, env=env, capture_output=True, text=True, check=False
        )
        assert probe.returncode == 0, probe.stderr
        loaded = json.loads(probe.stdout)
        site = deployed / f"framework-numerics@{version}" / "lib" / "python3.11" / "site-packages"
        assert loaded["version"] == numpy_version
        assert loaded["file"] == str(site / "numpy" / "__init__.py")
        assert loaded["inverse"] == [[0.5, 0.0], [0.0, 0.25]]
        assert loaded["libs"], "no library of numpy.libs loaded"
        assert {str(Path(lib).parent) for lib in loaded["libs"]} == {str(site / "numpy.libs")}
        assert any(Path(lib).name.startswith("libscipy_openblas") for lib in loaded["libs"]), loaded["libs"]
