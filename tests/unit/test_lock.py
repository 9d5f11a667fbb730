"""Tests for stacktool.lock with the real uv against PyPI (small pure packages only)."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import os
import re
import shutil
import sys
import threading
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from packaging.markers import Marker
from packaging.version import Version
from stacktool.contract import LayerSpec, SpecError, StackSpec
from stacktool.lock import (
    LockError,
    Resolver,
    changes,
    index_version,
    lock_stack,
    lock_time,
    read_previous_index,
    write_lock_files,
)
from stacktool.package_indexes import IndexSet
from stacktool.platforms import platform

NO_INDEXES = IndexSet({})  # PyPI only
RUNTIME_KEY, FRAMEWORK_KEY, APP_KEY = "stacks:cpython3_11", "stacks:sci", "stacks:app"
INDEX = "venvstacks_lock.json"


def spec_layer(
    key: str,
    kind: str,
    env_name: str,
    requirements: list[str],
    lower: list[str],
    platforms: list[str],
    versioned: bool = False,
) -> LayerSpec:
    return LayerSpec(
        key=key, kind=kind, env_name=env_name, python="3.11", python_version="", requirements=tuple(requirements),
        requirements_files=(), dependency_groups=(), package_indexes={}, priority_indexes=(), lower=tuple(lower),
        platforms=tuple(platforms),
        pylock=f"pylock.{env_name}.toml", linux_target="glibc@2.28", macosx_target="14.0", versioned=versioned,
    )  # fmt: skip


def stack(
    runtime: list[str],
    framework: list[str] | None = None,
    app: list[str] | None = None,
    platforms: tuple[str, ...] = ("linux_x86_64",),
    framework_env: str = "framework-sci",
) -> StackSpec:
    layers = [spec_layer(RUNTIME_KEY, "runtime", "cpython3_11", runtime, [], list(platforms))]
    if framework is not None:
        layers.append(spec_layer(FRAMEWORK_KEY, "framework", framework_env, framework, [RUNTIME_KEY], list(platforms)))
    if app is not None:
        lower = [FRAMEWORK_KEY, RUNTIME_KEY]
        layers.append(spec_layer(APP_KEY, "application", "app-app", app, lower, list(platforms)))
    return StackSpec("stacks:lock", "", {}, tuple(layers))


@pytest.fixture(scope="module")
def resolver(uv: Path) -> Resolver:
    return Resolver(uv, Path(sys.executable), NO_INDEXES)


def packages(text: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in tomllib.loads(text).get("packages", [])}


@pytest.fixture(scope="module")
def three_layers(resolver: Resolver) -> tuple[StackSpec, dict[str, str]]:
    spec = stack(
        runtime=["packaging==24.1"],
        framework=["packaging", "six==1.16.0", "wheel==0.45.1; sys_platform == 'win32'"],
        app=["six", "pyproject-api==1.8.0"],  # pyproject-api depends on packaging>=24.1
        platforms=("linux_x86_64", "win_amd64"),
    )
    return spec, lock_stack(spec, resolver, {})


def test_stack_locks_one_file_per_layer(three_layers):
    _, files = three_layers
    assert sorted(files) == ["index", "pylock.app-app.toml", "pylock.cpython3_11.toml", "pylock.framework-sci.toml"]
    runtime = packages(files["pylock.cpython3_11.toml"])
    assert {name: p["version"] for name, p in runtime.items()} == {"packaging": "24.1"}
    assert "marker" not in runtime["packaging"]


def test_lower_layer_packages_are_left_out_of_upper_layers(three_layers):
    _, files = three_layers
    framework = packages(files["pylock.framework-sci.toml"])
    assert sorted(framework) == ["six", "wheel"]  # packaging comes from the runtime
    assert framework["six"]["version"] == "1.16.0"
    assert "marker" not in framework["six"]
    wheel_marker = Marker(framework["wheel"]["marker"])
    assert wheel_marker.evaluate(platform("win_amd64").marker_environment("3.11"))
    assert not wheel_marker.evaluate(platform("linux_x86_64").marker_environment("3.11"))
    app = packages(files["pylock.app-app.toml"])
    assert sorted(app) == ["pyproject-api"]  # six (framework) and packaging (runtime, transitive) left out
    assert app["pyproject-api"]["version"] == "1.8.0"
    tool = tomllib.loads(files["pylock.app-app.toml"])["tool"]["rules_venvstacks"]
    assert tool == {"layer": "//stacks:app", "lower-layers": ["framework-sci", "cpython3_11"]}


def test_index_records_inputs_hashes_and_chosen_wheels(three_layers):
    spec, files = three_layers
    index = json.loads(files["index"])
    assert index["version"] == 2
    assert index["lock"] == "stacks:lock"
    assert sorted(index["layers"]) == sorted([RUNTIME_KEY, FRAMEWORK_KEY, APP_KEY])
    for key, entry in index["layers"].items():
        assert entry["inputs"] == spec.layer(key).inputs
        assert entry["pylock_sha256"] == hashlib.sha256(files[entry["pylock"]].encode()).hexdigest()
    framework = index["layers"][FRAMEWORK_KEY]["wheels"]
    assert [w["name"] for w in framework["linux_x86_64"]] == ["six"]
    assert [w["name"] for w in framework["win_amd64"]] == ["six", "wheel"]
    six = framework["linux_x86_64"][0]
    assert six["filename"] == "six-1.16.0-py2.py3-none-any.whl"
    assert six["sha256"] == "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"
    assert six["url"].endswith("/six-1.16.0-py2.py3-none-any.whl")
    assert six["size"] == 11053
    assert files["index"] == json.dumps(index, indent=1, sort_keys=True) + "\n"


def test_lower_pin_constrains_the_upper_layer(resolver):
    """pyproject-api 1.8.0 needs packaging>=24.1: fine alone, impossible on a runtime that pins 24.0."""
    files = lock_stack(stack(runtime=[], framework=["pyproject-api==1.8.0"]), resolver, {})
    assert Version(packages(files["pylock.framework-sci.toml"])["packaging"]["version"]) >= Version("24.1")
    with pytest.raises(LockError) as error:
        lock_stack(stack(runtime=["packaging==24.0"], framework=["pyproject-api==1.8.0"]), resolver, {})
    message = str(error.value)
    assert message.startswith("//stacks:sci (linux_x86_64): uv could not resolve")
    assert "packaging==24.0" in message


def test_requirement_conflicting_with_lower_pin_names_both_layers(resolver):
    with pytest.raises(LockError) as error:
        lock_stack(stack(runtime=["packaging==24.1"], framework=["six", "packaging>=25"]), resolver, {})
    assert str(error.value).startswith(
        "//stacks:sci: requirement 'packaging>=25' conflicts with packaging==24.1, which lower layer cpython3_11 "
        "provides on linux_x86_64"
    )


def test_conflict_under_a_false_marker_is_not_a_conflict(resolver):
    spec = stack(runtime=["packaging==24.1"], framework=["six==1.16.0", "packaging>=25; sys_platform == 'win32'"])
    files = lock_stack(spec, resolver, {})
    assert sorted(packages(files["pylock.framework-sci.toml"])) == ["six"]


def test_malformed_requirement_names_the_layer(resolver):
    with pytest.raises(SpecError) as error:
        lock_stack(stack(runtime=[], framework=["six", "six=="]), resolver, {})
    assert str(error.value).startswith("//stacks:sci: requirement 'six==' is not a valid PEP 508 requirement")


def test_source_only_package_is_a_lock_error_naming_it(resolver):
    with pytest.raises(LockError) as error:
        lock_stack(stack(runtime=[], framework=["sgmllib3k==1.0.0"]), resolver, {})
    message = str(error.value)
    assert message.startswith("//stacks:sci (linux_x86_64):")
    assert "sgmllib3k" in message


def test_extra_uv_arguments_are_passed(uv):
    # packaging 24.1 was uploaded on 2024-06-10: with --exclude-newer before that, uv must pick 24.0
    resolver = Resolver(uv, Path(sys.executable), NO_INDEXES, ("--exclude-newer", "2024-06-01T00:00:00Z"))
    files = lock_stack(stack(runtime=["packaging<25"]), resolver, {})
    assert packages(files["pylock.cpython3_11.toml"])["packaging"]["version"] == "24.0"


def test_relock_keeps_versions_and_rewrites_only_changed_files(resolver, tmp_path):
    first = lock_stack(stack(runtime=[], framework=["packaging<25"]), resolver, {})
    assert packages(first["pylock.framework-sci.toml"])["packaging"]["version"].startswith("24.")
    write_lock_files(tmp_path, INDEX, first, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [INDEX, "pylock.cpython3_11.toml", "pylock.framework-sci.toml"]
    )
    for path in tmp_path.iterdir():
        os.utime(path, (1_000_000_000, 1_000_000_000))

    previous = read_previous_index(tmp_path / INDEX)
    unpinned = stack(runtime=[], framework=["packaging"])
    fresh = lock_stack(unpinned, resolver, {})
    assert Version(packages(fresh["pylock.framework-sci.toml"])["packaging"]["version"]) >= Version("25")
    relocked = lock_stack(unpinned, resolver, previous)
    assert relocked["pylock.framework-sci.toml"] == first["pylock.framework-sci.toml"]  # still 24.x
    assert relocked["index"] != first["index"]  # the layer's inputs changed

    write_lock_files(tmp_path, INDEX, relocked, previous)
    assert (tmp_path / "pylock.framework-sci.toml").stat().st_mtime == 1_000_000_000
    assert (tmp_path / "pylock.cpython3_11.toml").stat().st_mtime == 1_000_000_000
    assert (tmp_path / INDEX).stat().st_mtime != 1_000_000_000
    assert (tmp_path / INDEX).read_text(encoding="utf-8") == relocked["index"]

    # the framework renamed: its old lock file goes, the new one comes, no partial files stay
    previous = read_previous_index(tmp_path / INDEX)
    renamed = lock_stack(stack(runtime=[], framework=["packaging"], framework_env="framework-new"), resolver, previous)
    write_lock_files(tmp_path, INDEX, renamed, previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [INDEX, "pylock.cpython3_11.toml", "pylock.framework-new.toml"]
    )


def test_read_previous_index(tmp_path):
    assert read_previous_index(tmp_path / "missing.json") == {}
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    assert read_previous_index(broken) == {}
    good = tmp_path / "good.json"
    good.write_text('{"version": 1, "layers": {}}', encoding="utf-8")
    assert read_previous_index(good) == {"version": 1, "layers": {}}


def test_nothing_is_written_when_a_layer_fails(resolver, tmp_path):
    """lock_stack raises before returning any file: the lock verb writes nothing."""
    with pytest.raises(LockError):
        files = lock_stack(stack(runtime=["six==1.16.0"], framework=["sgmllib3k==1.0.0"]), resolver, {})
        write_lock_files(tmp_path, INDEX, files, {})
    assert list(tmp_path.iterdir()) == []


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def local_index(wheels, tmp_path) -> Iterator[str]:
    """A PEP 503 index on loopback serving six as a local version, linked as PyTorch's index links torch+cpu."""
    project = tmp_path / "index" / "simple" / "six"
    project.mkdir(parents=True)
    wheel = shutil.copy(wheels["six-1.16.0"], project / "six-1.16.0+local-py2.py3-none-any.whl")
    digest = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
    (project / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="six-1.16.0%2Blocal-py2.py3-none-any.whl#sha256={digest}">'
        "six-1.16.0+local-py2.py3-none-any.whl</a></body></html>\n",
        encoding="utf-8",
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(tmp_path / "index")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()
    server.server_close()


def test_lock_wheel_with_local_version_from_an_index(uv, local_index):
    resolver = Resolver(uv, Path(sys.executable), NO_INDEXES, ("--index-url", local_index))
    files = lock_stack(stack(runtime=["six==1.16.0+local"]), resolver, {})
    six = json.loads(files["index"])["layers"][RUNTIME_KEY]["wheels"]["linux_x86_64"][0]
    assert (six["version"], six["filename"]) == ("1.16.0+local", "six-1.16.0+local-py2.py3-none-any.whl")


# --------------------------------------------------------------------------------------------------
# lock versions, install targets and lock times

T1 = datetime(2026, 1, 10, 12, 0, 0, 123456, tzinfo=UTC)
T2 = datetime(2026, 2, 10, 12, 0, 0, tzinfo=UTC)
T3 = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)
T4 = datetime(2026, 4, 10, 12, 0, 0, tzinfo=UTC)
T1_Z, T3_Z, T4_Z = "2026-01-10T12:00:00Z", "2026-03-10T12:00:00Z", "2026-04-10T12:00:00Z"
SCI, WEB, TOOL, SITE_KEY = "stacks:sci", "stacks:web", "stacks:tool", "stacks:site"


def versioned_stack(six: str, with_site: bool = True, tool: str = "packaging==24.0") -> StackSpec:
    """A stack of versioned layers (but one): framework-sci (installs `six`) with a versioned and an unversioned
    application (installs `tool`) above it, an unrelated framework-web with (optionally) an application above it."""
    x86 = ["linux_x86_64"]
    layers = [
        spec_layer(RUNTIME_KEY, "runtime", "cpython3_11", [], [], x86, versioned=True),
        spec_layer(SCI, "framework", "framework-sci", [f"six=={six}"], [RUNTIME_KEY], x86, versioned=True),
        spec_layer(WEB, "framework", "framework-web", ["packaging==24.1"], [RUNTIME_KEY], x86, versioned=True),
        spec_layer(APP_KEY, "application", "app-app", [], [SCI, RUNTIME_KEY], x86, versioned=True),
        spec_layer(TOOL, "application", "app-tool", [tool], [SCI, RUNTIME_KEY], x86, versioned=False),
    ]
    if with_site:
        layers.append(spec_layer(SITE_KEY, "application", "app-site", [], [WEB, RUNTIME_KEY], x86, versioned=True))
    return StackSpec("stacks:lock", "", {}, tuple(layers))


def versions(files: dict[str, str]) -> dict[str, tuple[str, int, str]]:
    """Per layer key: its install target, lock version and lock time, from the index."""
    layers = json.loads(files["index"])["layers"]
    return {key: (e["install_target"], e["lock_version"], e["locked_at"]) for key, e in layers.items()}


def test_first_lock_versions_and_install_targets(resolver):
    files = lock_stack(versioned_stack("1.16.0"), resolver, {}, now=T1)
    assert versions(files) == {
        RUNTIME_KEY: ("cpython3_11@1", 1, T1_Z),
        SCI: ("framework-sci@1", 1, T1_Z),
        WEB: ("framework-web@1", 1, T1_Z),
        APP_KEY: ("app-app@1", 1, T1_Z),
        TOOL: ("app-tool", 1, T1_Z),  # not versioned: deployed under its env_name
        SITE_KEY: ("app-site@1", 1, T1_Z),
    }
    for entry in json.loads(files["index"])["layers"].values():
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", entry["requirements_hash"])
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", entry["version_inputs_hash"])
    # the pylock files name the lower layers by env_name: they describe what is installed, not where it is deployed
    app = tomllib.loads(files["pylock.app-app.toml"])["tool"]["rules_venvstacks"]
    assert app["lower-layers"] == ["framework-sci", "cpython3_11"]


def test_relock_of_an_unchanged_stack_keeps_versions_times_and_bytes(resolver, tmp_path):
    spec = versioned_stack("1.16.0")
    first = lock_stack(spec, resolver, {}, now=T1)
    write_lock_files(tmp_path, INDEX, first, {})
    again = lock_stack(spec, resolver, read_previous_index(tmp_path / INDEX), now=T2)
    assert again["index"] == first["index"]  # byte-identical: lock versions and lock times stay
    assert again == first


def test_requirement_change_bumps_the_layer_and_the_versioned_layers_above_it(resolver):
    first = lock_stack(versioned_stack("1.16.0", with_site=False), resolver, {}, now=T1)
    changed = lock_stack(versioned_stack("1.17.0"), resolver, json.loads(first["index"]), now=T3)
    assert versions(changed) == {
        RUNTIME_KEY: ("cpython3_11@1", 1, T1_Z),  # below the change: untouched
        SCI: ("framework-sci@2", 2, T3_Z),  # its requirement changed
        WEB: ("framework-web@1", 1, T1_Z),  # unrelated
        APP_KEY: ("app-app@2", 2, T3_Z),  # installs the same, but over framework-sci@2 now
        TOOL: ("app-tool", 1, T1_Z),  # not versioned, its own lock unchanged: nothing moves
        SITE_KEY: ("app-site@1", 1, T3_Z),  # new in this lock (no previous entry)
    }
    before, after = json.loads(first["index"])["layers"], json.loads(changed["index"])["layers"]
    assert after[APP_KEY]["requirements_hash"] == before[APP_KEY]["requirements_hash"]
    assert after[APP_KEY]["version_inputs_hash"] != before[APP_KEY]["version_inputs_hash"]
    assert after[SCI]["requirements_hash"] != before[SCI]["requirements_hash"]
    assert after[SCI]["wheels"]["linux_x86_64"][0]["version"] == "1.17.0"

    # locked again unchanged: nothing moves; back to the old requirement: the versions move on, never back
    assert versions(lock_stack(versioned_stack("1.17.0"), resolver, json.loads(changed["index"]), now=T4)) == (
        versions(changed)
    )
    reverted = versions(lock_stack(versioned_stack("1.16.0"), resolver, json.loads(changed["index"]), now=T4))
    assert (reverted[SCI], reverted[APP_KEY]) == (("framework-sci@3", 3, T4_Z), ("app-app@3", 3, T4_Z))
    assert (reverted[RUNTIME_KEY], reverted[WEB], reverted[SITE_KEY]) == (
        ("cpython3_11@1", 1, T1_Z),
        ("framework-web@1", 1, T1_Z),
        ("app-site@1", 1, T3_Z),
    )


def test_unversioned_layer_stays_at_1_and_its_lock_time_moves_with_its_lock(resolver):
    first = lock_stack(versioned_stack("1.16.0"), resolver, {}, now=T1)
    changed = lock_stack(versioned_stack("1.16.0", tool="packaging==24.1"), resolver, json.loads(first["index"]), T3)
    assert versions(changed) == versions(first) | {TOOL: ("app-tool", 1, T3_Z)}  # nothing else moves
    tool = packages(changed["pylock.app-tool.toml"])
    assert {name: p["version"] for name, p in tool.items()} == {"packaging": "24.1"}


def test_previous_index_of_format_1_counts_as_no_previous_lock(resolver):
    first = lock_stack(versioned_stack("1.16.0"), resolver, {}, now=T1)
    bumped = json.loads(lock_stack(versioned_stack("1.17.0"), resolver, json.loads(first["index"]), now=T3)["index"])
    assert bumped["layers"][SCI]["lock_version"] == 2
    old_format = bumped | {"version": 1}
    relocked = versions(lock_stack(versioned_stack("1.17.0"), resolver, old_format, now=T4))
    assert {key: (version, at) for key, (_, version, at) in relocked.items()} == {
        key: (1, T4_Z) for key in (RUNTIME_KEY, SCI, WEB, APP_KEY, TOOL, SITE_KEY)
    }
    assert relocked[SCI][0] == "framework-sci@1"


def test_what_a_layer_installs_moves_its_version(uv):
    """Same spec, other wheels (an upgrade): the versioned layer's version moves; kept versions keep it."""
    spec = dataclasses.replace(stack(runtime=[], framework=["six"]), exclude_newer="2021-06-01")
    spec = dataclasses.replace(spec, layers=tuple(dataclasses.replace(x, versioned=True) for x in spec.layers))
    old = lock_stack(spec, Resolver(uv, Path(sys.executable), NO_INDEXES, (), "2021-06-01"), {}, now=T1)
    assert packages(old["pylock.framework-sci.toml"])["six"]["version"] == "1.16.0"
    assert versions(old)[FRAMEWORK_KEY] == ("framework-sci@1", 1, "2021-06-01T00:00:00Z")  # now, clamped
    # without the cut-off uv keeps the versions of the previous lock: nothing the layer installs changes
    unlimited = dataclasses.replace(spec, exclude_newer="")
    kept = lock_stack(unlimited, Resolver(uv, Path(sys.executable), NO_INDEXES), json.loads(old["index"]), now=T3)
    assert packages(kept["pylock.framework-sci.toml"])["six"]["version"] == "1.16.0"
    assert versions(kept) == versions(old)
    assert json.loads(kept["index"])["exclude_newer"] == ""
    upgraded = lock_stack(
        unlimited, Resolver(uv, Path(sys.executable), NO_INDEXES, ("--upgrade",)), json.loads(kept["index"]), T3
    )
    assert Version(packages(upgraded["pylock.framework-sci.toml"])["six"]["version"]) >= Version("1.17.0")
    assert versions(upgraded)[FRAMEWORK_KEY] == ("framework-sci@2", 2, T3_Z)
    assert versions(upgraded)[RUNTIME_KEY] == ("cpython3_11@1", 1, "2021-06-01T00:00:00Z")


# --------------------------------------------------------------------------------------------------
# exclude_newer


@pytest.mark.parametrize(
    ("exclude_newer", "now", "expected"),
    [
        ("", T1, T1_Z),  # no limit: now, without microseconds
        ("2030-01-01T00:00:00Z", T1, T1_Z),  # a limit in the future
        ("2021-06-01", T1, "2021-06-01T00:00:00Z"),  # a date: its midnight, UTC
        ("2021-06-01T12:30:00Z", T1, "2021-06-01T12:30:00Z"),
        ("2021-06-01T02:00:00+02:00", T1, "2021-06-01T00:00:00Z"),  # an offset: written as UTC
        ("2026-01-10T12:00:00Z", T1, T1_Z),  # the limit itself
        ("", datetime(2026, 1, 10, 13, 0, tzinfo=timezone(timedelta(hours=1))), T1_Z),  # now elsewhere: UTC
    ],
)
def test_lock_time_is_now_clamped_to_exclude_newer(exclude_newer, now, expected):
    assert lock_time(exclude_newer, now) == expected


def test_lock_time_defaults_to_the_current_time():
    before = datetime.now(UTC).replace(microsecond=0)
    taken = lock_time("")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", taken)
    assert before <= datetime.fromisoformat(taken) <= datetime.now(UTC)
    assert lock_time("2021-06-01") == "2021-06-01T00:00:00Z"


def test_exclude_newer_picks_the_release_before_it_and_is_recorded(uv):
    """six 1.17.0 was released in December 2024: locked as of June 2021, six is 1.16.0."""
    spec = dataclasses.replace(stack(runtime=["six"]), exclude_newer="2021-06-01")
    files = lock_stack(spec, Resolver(uv, Path(sys.executable), NO_INDEXES, (), "2021-06-01"), {})
    assert packages(files["pylock.cpython3_11.toml"])["six"]["version"] == "1.16.0"
    index = json.loads(files["index"])
    assert index["exclude_newer"] == "2021-06-01"
    assert index["layers"][RUNTIME_KEY]["locked_at"] == "2021-06-01T00:00:00Z"
    assert index["layers"][RUNTIME_KEY]["wheels"]["linux_x86_64"][0]["filename"] == "six-1.16.0-py2.py3-none-any.whl"
    # the same stack without the limit: the newest six
    latest = lock_stack(dataclasses.replace(spec, exclude_newer=""), Resolver(uv, Path(sys.executable), NO_INDEXES), {})
    assert Version(packages(latest["pylock.cpython3_11.toml"])["six"]["version"]) >= Version("1.17.0")
    assert json.loads(latest["index"])["exclude_newer"] == ""


# --------------------------------------------------------------------------------------------------
# frameworks over frameworks (C3 order)

D_KEY, B_KEY, C_KEY = "stacks:d", "stacks:b", "stacks:c"


def diamond(b: list[str], c: list[str], app: list[str], d: list[str] | None = None) -> StackSpec:
    """runtime <- framework-d <- framework-b and framework-c <- app (over both), as the layer rules order `lower`;
    without `d`, framework-b and framework-c sit on the runtime only."""
    x86 = ["linux_x86_64"]
    over = [D_KEY, RUNTIME_KEY] if d is not None else [RUNTIME_KEY]
    layers = [spec_layer(RUNTIME_KEY, "runtime", "cpython3_11", [], [], x86)]
    if d is not None:
        layers.append(spec_layer(D_KEY, "framework", "framework-d", d, [RUNTIME_KEY], x86))
    layers += [
        spec_layer(B_KEY, "framework", "framework-b", b, over, x86),
        spec_layer(C_KEY, "framework", "framework-c", c, over, x86),
        spec_layer(APP_KEY, "application", "app-app", app, [B_KEY, C_KEY, *over], x86),
    ]
    return StackSpec("stacks:lock", "", {}, tuple(layers))


def test_diamond_locks_each_package_once(resolver):
    spec = diamond(
        d=["six==1.16.0"], b=["packaging==24.1", "six"], c=["wheel==0.45.1"],
        app=["six", "packaging", "wheel", "pyproject-api==1.8.0"],
    )  # fmt: skip
    files = lock_stack(spec, resolver, {})
    assert {name: p["version"] for name, p in packages(files["pylock.framework-d.toml"]).items()} == {"six": "1.16.0"}
    assert sorted(packages(files["pylock.framework-b.toml"])) == ["packaging"]  # six comes from framework-d
    assert sorted(packages(files["pylock.framework-c.toml"])) == ["wheel"]
    app = tomllib.loads(files["pylock.app-app.toml"])
    assert [p["name"] for p in app["packages"]] == ["pyproject-api"]  # the rest comes from the frameworks below
    assert app["tool"]["rules_venvstacks"]["lower-layers"] == [
        "framework-b",
        "framework-c",
        "framework-d",
        "cpython3_11",
    ]


def test_diamond_requirement_conflicting_with_the_shared_framework_names_it(resolver):
    with pytest.raises(LockError) as error:
        lock_stack(diamond(d=["six==1.16.0"], b=["packaging==24.1"], c=[], app=["six>=1.17"]), resolver, {})
    assert str(error.value).startswith(
        "//stacks:app: requirement 'six>=1.17' conflicts with six==1.16.0, which lower layer framework-d provides"
    )


def test_sibling_frameworks_with_different_versions_of_a_package_name_both(resolver):
    spec = diamond(b=["six==1.16.0"], c=["six==1.17.0"], app=[])
    with pytest.raises(LockError) as error:
        lock_stack(spec, resolver, {})
    message = str(error.value)
    assert message.startswith(
        "//stacks:app: its lower layers install different versions of six on linux_x86_64 "
        "(framework-b: 1.16.0, framework-c: 1.17.0); only one can be imported."
    )
    assert message.endswith("then lock again")
    # siblings that install the same version agree
    files = lock_stack(diamond(b=["six==1.16.0"], c=["six==1.16.0"], app=["six"]), resolver, {})
    assert packages(files["pylock.app-app.toml"]) == {}


# --------------------------------------------------------------------------------------------------
# the index and its schema

SCHEMA = Path(__file__).resolve().parents[2] / "python" / "stacktool" / "schemas" / "lock-index.schema.json"


def test_index_version_is_the_schema_const():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert index_version() == schema["properties"]["version"]["const"] == 2


def test_written_index_matches_its_schema(three_layers):
    _, files = three_layers
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    index = json.loads(files["index"])
    validator.validate(index)
    entry = index["layers"][FRAMEWORK_KEY]
    broken = [
        {"locked_at": KeyError},
        {"lock_version": 0},
        {"requirements_hash": "0" * 64},
        {"version_inputs_hash": KeyError},
        {"pylock_sha256": "F" * 64},
        {"pylock": "pylock.framework.sci.toml"},
        {"unknown": "field"},
    ]
    for change in broken:
        bad = {k: v for k, v in (entry | change).items() if v is not KeyError}
        assert not validator.is_valid(index | {"layers": {FRAMEWORK_KEY: bad}}), change
    assert not validator.is_valid(index | {"version": 1})


def test_lock_stack_refuses_to_write_an_index_its_schema_rejects(resolver):
    """The index is validated before anything is returned (here: a lock file name the module extension cannot
    map back to a layer, which the layer rules never choose)."""
    spec = stack(runtime=[])
    spec = dataclasses.replace(spec, layers=(dataclasses.replace(spec.layers[0], pylock="pylock.cpython3.11.toml"),))
    with pytest.raises(LockError) as error:
        lock_stack(spec, resolver, {})
    assert str(error.value).startswith(
        f"the lock index of stacks:lock does not fit its schema at layers/{RUNTIME_KEY}/pylock:"
    )


# --------------------------------------------------------------------------------------------------
# changes: what the lock target says about each layer; write_lock_files: one stack_lock per package


def index_entry(install_target: str, **platforms: list[tuple[str, str]]) -> dict[str, Any]:
    """A layer's index entry with what `changes` reads: its install target and its (name, version)s per platform."""
    wheels = {p: [{"name": n, "version": v} for n, v in packages] for p, packages in platforms.items()}
    return {"install_target": install_target, "wheels": wheels}


def test_changes_against_the_previous_lock():
    previous = {
        "layers": {
            RUNTIME_KEY: index_entry("cpython3_11", linux_x86_64=[("packaging", "24.1")]),
            FRAMEWORK_KEY: index_entry(
                "framework-sci@1",
                linux_x86_64=[("six", "1.16.0"), ("wheel", "0.45.1"), ("idna", "3.7")],
                win_amd64=[("six", "1.16.0"), ("idna", "3.7")],
            ),
        }
    }
    index = {
        "layers": {
            RUNTIME_KEY: index_entry("cpython3_11", linux_x86_64=[("packaging", "24.1")]),
            FRAMEWORK_KEY: index_entry(
                "framework-sci@2",
                linux_x86_64=[("six", "1.17.0"), ("numpy", "2.1.0"), ("idna", "3.7")],
                win_amd64=[("six", "1.17.0"), ("numpy", "2.1.1"), ("idna", "3.10")],
            ),
            APP_KEY: index_entry("app-app", linux_x86_64=[("tqdm", "4.66.5")], win_amd64=[]),
            "stacks:empty": index_entry("framework-empty", linux_x86_64=[]),
        }
    }
    assert changes(previous, index) == [
        "cpython3_11: 1 package; unchanged",
        # added, removed, then moved; a version that differs across platforms shows each (sorted)
        "framework-sci@2: 3 packages; +numpy 2.1.0/2.1.1, -wheel, idna 3.7 -> 3.10/3.7, six 1.16.0 -> 1.17.0",
        "app-app: 1 package; new layer: +tqdm 4.66.5",
        "framework-empty: 0 packages; new layer",
    ]


def test_changes_of_a_first_lock_and_of_a_version_split_across_platforms():
    index = {
        "layers": {
            FRAMEWORK_KEY: index_entry(
                "framework-sci", linux_x86_64=[("six", "1.16.0"), ("wheel", "0.45.1")], win_amd64=[("six", "1.17.0")]
            )
        }
    }
    assert changes({}, index) == ["framework-sci: 2 packages; new layer: +six 1.16.0/1.17.0, +wheel 0.45.1"]
    relocked = {"layers": {FRAMEWORK_KEY: index_entry("framework-sci", linux_x86_64=[("six", "1.17.0")])}}
    assert changes(index, relocked) == ["framework-sci: 1 package; -wheel, six 1.16.0/1.17.0 -> 1.17.0"]
    assert changes(relocked, relocked) == ["framework-sci: 1 package; unchanged"]


def lock_files(lock: str, env_name: str) -> dict[str, str]:
    """What lock_stack returns for a one-layer stack of lock target `lock` (what write_lock_files reads of it)."""
    index = {
        "version": index_version(),
        "lock": lock,
        "layers": {f"{lock}:{env_name}": {"pylock": f"pylock.{env_name}.toml"}},
    }
    return {"index": json.dumps(index, indent=1) + "\n", f"pylock.{env_name}.toml": f"# {env_name} of {lock}\n"}


def test_index_of_another_lock_target_is_refused_and_nothing_written(tmp_path):
    ours = lock_files("//stacks:lock", "cpython3_11")
    write_lock_files(tmp_path, INDEX, ours, {})
    written = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir()}
    assert written == {INDEX: ours["index"], "pylock.cpython3_11.toml": ours["pylock.cpython3_11.toml"]}
    previous = read_previous_index(tmp_path / INDEX)
    with pytest.raises(LockError) as error:
        write_lock_files(tmp_path, INDEX, lock_files("//stacks:other_lock", "cpython3_12"), previous)
    assert str(error.value) == (
        f"{tmp_path / INDEX} is written by //stacks:lock, not //stacks:other_lock: one stack_lock per package (list "
        "these layers in //stacks:lock, or move this stack_lock to another package)"
    )
    assert {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir()} == written
    # the lock target that wrote it (or an index from before indexes named it) writes it again
    relocked = lock_files("//stacks:lock", "cpython3_12")
    write_lock_files(tmp_path, INDEX, relocked, previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([INDEX, "pylock.cpython3_12.toml"])
    unnamed = {k: v for k, v in previous.items() if k != "lock"}
    write_lock_files(tmp_path, INDEX, lock_files("//stacks:other_lock", "cpython3_12"), unnamed)
    assert json.loads((tmp_path / INDEX).read_text(encoding="utf-8"))["lock"] == "//stacks:other_lock"
