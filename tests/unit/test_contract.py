"""Tests for stacktool.contract: the records crossing the Starlark/Python boundary, decoded strictly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from stacktool.contract import (
    ComposeConfig,
    ContractError,
    LayerSpec,
    Module,
    SpecError,
    StackSpec,
    Wheel,
    from_json,
    read_json,
    to_json,
)
from stacktool.platforms import DeploymentTarget


def layer_from_json(data: dict[str, Any]) -> LayerSpec:
    return from_json(LayerSpec, data, "spec")


def load_stack(path) -> StackSpec:
    return StackSpec.load(path)


def layer(key: str, kind: str, env_name: str, lower: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "kind": kind,
        "env_name": env_name,
        "python": "3.11",
        "requirements": extra.pop("requirements", []),
        "lower": lower,
        "platforms": extra.pop("platforms", ["linux_x86_64", "win_amd64"]),
        "pylock": extra.pop("pylock", f"pylock.{env_name}.toml"),
        "linux_target": extra.pop("linux_target", "glibc@2.28"),
        "macosx_target": extra.pop("macosx_target", "14.0"),
        "python_version": extra.pop("python_version", ""),
        "requirements_files": extra.pop("requirements_files", []),
        "dependency_groups": extra.pop("dependency_groups", []),
        "package_indexes": extra.pop("package_indexes", {}),
        "priority_indexes": extra.pop("priority_indexes", []),
        "versioned": extra.pop("versioned", False),
    }


def write_spec(tmp_path, layers: list[dict[str, Any]], exclude_newer: str = ""):
    path = tmp_path / "lock.spec.json"
    spec = {"lock": "stacks:lock", "exclude_newer": exclude_newer, "indexes": {}, "layers": layers}
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


RUNTIME = layer("stacks:cpython3_11", "runtime", "cpython3_11", [])
FRAMEWORK = layer("stacks:sci", "framework", "framework-sci", ["stacks:cpython3_11"], requirements=["six==1.16.0"])


def test_load_stack(tmp_path):
    stack = load_stack(write_spec(tmp_path, [RUNTIME, FRAMEWORK]))
    assert stack.lock == "stacks:lock"
    assert [item.key for item in stack.layers] == ["stacks:cpython3_11", "stacks:sci"]
    sci = stack.layer("stacks:sci")
    assert sci.label == "//stacks:sci"
    assert sci.requirements == ("six==1.16.0",)
    assert sci.lower == ("stacks:cpython3_11",)
    assert sci.inputs == FRAMEWORK  # kept verbatim: the index compares it with what Bazel writes next time
    assert sci.target() == DeploymentTarget(glibc=(2, 28), macos=(14, 0))
    assert [p.name for p in sci.target_platforms()] == ["linux_x86_64", "win_amd64"]
    assert sci.requirement_names() == {"six"}


@pytest.mark.parametrize("exclude_newer", ["", "2021-06-01", "2021-06-01T00:00:00Z", "2021-06-01T02:00:00+02:00"])
def test_exclude_newer_is_a_date_or_a_time(tmp_path, exclude_newer):
    assert load_stack(write_spec(tmp_path, [RUNTIME], exclude_newer)).exclude_newer == exclude_newer


@pytest.mark.parametrize("exclude_newer", ["June 2021", "2021-13-01", "yesterday"])
def test_exclude_newer_that_is_no_time_is_refused(tmp_path, exclude_newer):
    with pytest.raises(SpecError) as error:
        load_stack(write_spec(tmp_path, [RUNTIME], exclude_newer))
    assert str(error.value).startswith(
        f"stacks:lock: exclude_newer {exclude_newer!r} is not a date or an RFC 3339 time"
    )


def test_duplicate_env_name_names_both_layers(tmp_path):
    twin = layer("other:sci", "framework", "framework-sci", ["stacks:cpython3_11"])
    with pytest.raises(SpecError) as error:
        load_stack(write_spec(tmp_path, [RUNTIME, FRAMEWORK, twin]))
    message = str(error.value)
    assert "//other:sci" in message
    assert "//stacks:sci" in message
    assert "'framework-sci'" in message


def test_unknown_lower_layer(tmp_path):
    orphan = layer("stacks:app", "application", "app-x", ["stacks:missing", "stacks:cpython3_11"])
    with pytest.raises(SpecError) as error:
        load_stack(write_spec(tmp_path, [RUNTIME, orphan]))
    assert str(error.value) == "//stacks:app: lower layer //stacks:missing is not part of stacks:lock; add it there"


@pytest.mark.parametrize("bad", ["six==", "not a requirement!", "six>=1;;", "six @"])
def test_malformed_requirement_names_layer(bad):
    spec = layer_from_json(layer("stacks:sci", "framework", "framework-sci", [], requirements=["packaging", bad]))
    with pytest.raises(SpecError) as error:
        spec.parsed_requirements()
    message = str(error.value)
    assert message.startswith(f"//stacks:sci: requirement {bad!r} is not a valid PEP 508 requirement")
    assert "fix it in the layer's `requirements`" in message


def test_requirement_names_are_canonical():
    spec = layer_from_json(layer("s:l", "framework", "framework-l", [], requirements=["Typing_Extensions>=4", "Six"]))
    assert spec.requirement_names() == {"typing-extensions", "six"}


def test_bad_target_and_platform_name_the_layer():
    bad_target = layer_from_json(layer("s:l", "framework", "framework-l", [], linux_target="musl@1.2"))
    with pytest.raises(SpecError, match=r"^//s:l: linux_target 'musl@1.2'"):
        bad_target.target()
    bad_platform = layer_from_json(layer("s:l", "framework", "framework-l", [], platforms=["linux_x86_64", "amiga"]))
    with pytest.raises(SpecError, match=r"^//s:l: unknown platform 'amiga'"):
        bad_platform.target_platforms()


def test_missing_and_unknown_fields_are_named(tmp_path):
    data = dict(FRAMEWORK, extra=1)
    del data["pylock"]
    with pytest.raises(ContractError) as error:
        layer_from_json(data)
    assert str(error.value).startswith("spec: LayerSpec fields differ (missing: pylock; unknown: extra)")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("requirements", "six", "spec.requirements: expected a list, got 'six'"),
        ("python", 3.11, "spec.python: expected str, got 3.11"),
        ("platforms", ["linux_x86_64", 1], "spec.platforms[1]: expected str, got 1"),
    ],
)
def test_values_of_the_wrong_type_are_named(field, value, expected):
    with pytest.raises(ContractError) as error:
        layer_from_json(dict(FRAMEWORK, **{field: value}))
    assert str(error.value) == expected


def test_spec_round_trips_to_what_bazel_wrote():
    """The index records `inputs`; the layer rule compares it with its own spec dict, so it must be exact."""
    assert layer_from_json(FRAMEWORK).inputs == FRAMEWORK
    assert json.loads(to_json(layer_from_json(FRAMEWORK))) == FRAMEWORK


def test_compose_config_decodes_nested_records_and_nulls(tmp_path):
    config = ComposeConfig(
        env_name="app-x",
        install_target="app-x@3",
        kind="application",
        platform="linux_x86_64",
        python="3.11",
        runtime="cpython3_11",
        lower=("cpython3_11",),
        launch_module="x",
        support_modules=(),
        wheels=(Wheel("six", "1.16.0", "six-1.16.0-py2.py3-none-any.whl", "0" * 64, "trees/six"),),
        modules=(Module("x.py", "src/x.py"),),
        dynlib_exclude=(),
        runtime_archive=None,
        runtime_source=None,
        runtime_origin=None,
        python_version="",
        runtime_record="runtime_record.json",
        venv_files="venv_files",
    )
    path = tmp_path / "compose.json"
    path.write_text(to_json(config), encoding="utf-8")
    assert read_json(ComposeConfig, path) == config
    broken = json.loads(to_json(config))
    broken["wheels"][0]["sha256"] = None
    path.write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(ContractError, match=r"compose.json.wheels\[0\].sha256: expected str, got None"):
        read_json(ComposeConfig, path)
