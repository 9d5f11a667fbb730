"""Tests for stacktool.lock with the real uv against PyPI (small pure packages only)."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import sys
import threading
import tomllib
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.version import Version
from stacktool.contract import LayerSpec, SpecError, StackSpec
from stacktool.lock import LockError, Resolver, lock_stack, read_previous_index, write_lock_files
from stacktool.platforms import platform

RUNTIME_KEY, FRAMEWORK_KEY, APP_KEY = "stacks:cpython3_11", "stacks:sci", "stacks:app"
INDEX = "venvstacks_lock.json"


def spec_layer(
    key: str, kind: str, env_name: str, requirements: list[str], lower: list[str], platforms: list[str],
    versioned: bool = False,
) -> LayerSpec:
    return LayerSpec(
        key=key, kind=kind, env_name=env_name, python="3.11", python_version="", requirements=tuple(requirements),
        lower=tuple(lower), platforms=tuple(platforms), pylock=f"pylock.{env_name}.toml", linux_target="glibc@2.28",
        macosx_target="14.0", versioned=versioned,
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
    return StackSpec("stacks:lock", "", tuple(layers))


@pytest.fixture(scope="module")
def resolver(uv: Path) -> Resolver:
    return Resolver(uv, Path(sys.executable))


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
    resolver = Resolver(uv, Path(sys.executable), ("--exclude-newer", "2024-06-01T00:00:00Z"))
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
    resolver = Resolver(uv, Path(sys.executable), ("--index-url", local_index))
    files = lock_stack(stack(runtime=["six==1.16.0+local"]), resolver, {})
    six = json.loads(files["index"])["layers"][RUNTIME_KEY]["wheels"]["linux_x86_64"][0]
    assert (six["version"], six["filename"]) == ("1.16.0+local", "six-1.16.0+local-py2.py3-none-any.whl")
