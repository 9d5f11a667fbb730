"""Tests for stacktool.package_indexes: the uv project of a layer, and which index a locked wheel came from."""

from __future__ import annotations

import tomllib
from dataclasses import replace

import pytest
from stacktool.contract import LayerSpec, PackageIndex
from stacktool.package_indexes import IndexSet

CPU = PackageIndex("https://download.pytorch.org/whl/cpu", False, True, False, "file:///mirror/cpu")
LOCAL = PackageIndex("third_party/wheels", False, False, True, "file:///ws/third_party/wheels")
EXTRA = PackageIndex("https://extra.invalid/simple", False, False, False, "https://extra.invalid/simple")
LAYER = LayerSpec(
    key="stacks:torch", kind="framework", env_name="framework-torch", python="3.11", python_version="",
    requirements=(), requirements_files=(), dependency_groups=(), package_indexes={"torch": "pytorch-cpu"},
    priority_indexes=(), lower=(), platforms=("linux_x86_64",), pylock="pylock.framework-torch.toml",
    linux_target="glibc@2.28", macosx_target="13.0", versioned=False,
)  # fmt: skip


def project(indexes: IndexSet, layer: LayerSpec = LAYER) -> dict:
    return tomllib.loads(indexes.project(layer, ("torch==2.13.0", "six")))


def test_project_sends_packages_to_their_index_and_lists_indexes_in_order():
    data = project(IndexSet({"pytorch-cpu": CPU, "local": LOCAL, "extra": EXTRA}))
    assert data["project"]["dependencies"] == ["torch==2.13.0", "six"]
    assert data["project"]["requires-python"] == "==3.11.*"
    assert data["tool"]["uv"]["sources"] == {"torch": {"index": "pytorch-cpu"}}
    assert data["tool"]["uv"]["index"] == [
        {"name": "pytorch-cpu", "url": "file:///mirror/cpu", "explicit": True, "default": False},
        {"name": "local", "url": "file:///ws/third_party/wheels", "explicit": False, "default": False,
         "format": "flat"},
        {"name": "extra", "url": "https://extra.invalid/simple", "explicit": False, "default": False},
    ]  # fmt: skip


def test_priority_indexes_come_first_and_are_not_explicit():
    layer = replace(LAYER, priority_indexes=("extra", "pytorch-cpu"))
    data = project(IndexSet({"pytorch-cpu": CPU, "local": LOCAL, "extra": EXTRA}), layer)
    assert [(i["name"], i["explicit"]) for i in data["tool"]["uv"]["index"]] == [
        ("extra", False),
        ("pytorch-cpu", False),
        ("local", False),
    ]


@pytest.mark.parametrize(
    ("package", "url", "expected"),
    [
        ("torch", "file:///mirror/cpu/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", "pytorch-cpu"),
        ("mine", "file:///ws/third_party/wheels/mine-1.0-py3-none-any.whl", "local"),
        ("six", "https://files.pythonhosted.org/packages/x/six-1.17.0-py2.py3-none-any.whl", "pypi"),
    ],
)
def test_wheel_index(package, url, expected):
    assert IndexSet({"pytorch-cpu": CPU, "local": LOCAL}).wheel_index(LAYER, package, url) == expected


def test_declared_default_index_names_unpinned_wheels():
    default = replace(EXTRA, default=True)
    assert IndexSet({"corp": default}).default_name == "corp"
    assert IndexSet({"corp": default}).wheel_index(LAYER, "six", "https://extra.invalid/six.whl") == "corp"


def test_no_machine_path_is_recorded():
    assert IndexSet.recorded_url("file:///ws/third_party/wheels/mine-1.0-py3-none-any.whl") == ""
    assert (
        IndexSet.recorded_url("https://files.pythonhosted.org/x/six.whl") == "https://files.pythonhosted.org/x/six.whl"
    )
