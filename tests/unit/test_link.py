"""Tests for stacktool.link: the files that chain a layer to the layers below it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from stacktool.archive import tree_members
from stacktool.layout import Layout
from stacktool.link import (
    INJECTED,
    LIBRARY_PATH_FILE,
    LinkError,
    is_shared_library,
    layers_path_files,
    lower_site_packages,
    python_wrapper,
    shared_libraries,
)

POSIX = Layout("3.11", windows=False)
WINDOWS = Layout("3.11", windows=True)
SITE = POSIX.site_packages


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("libfoo.so", True),
        ("libopenblas64_p-r0-15028c96.3.21.so", True),
        ("libomp.dylib", True),
        ("libc++.1.dylib", True),
        ("_multiarray_umath.cpython-311-x86_64-linux-gnu.so", False),
        ("_ext.cpython-311-darwin.so", False),
        ("_cffi_backend.abi3.so", False),
        ("_ext.pypy39-pp73-x86_64-linux-gnu.so", False),
        ("foo.dll", False),
        ("foo.pyd", False),
        ("foo.py", False),
        ("so", False),
        ("README.so.txt", False),
    ],
)
def test_is_shared_library(name, expected):
    assert is_shared_library(name) is expected


def make_files(root: Path, paths: list[str]) -> None:
    for rel in paths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x7fELF" + rel.encode())


def test_shared_libraries_skip_extension_modules(tmp_path):
    make_files(tmp_path, [
        f"{SITE}/torch/lib/libtorch.so",
        f"{SITE}/torch/_C.cpython-311-x86_64-linux-gnu.so",
        f"{SITE}/numpy.libs/libopenblas.so",
        f"{SITE}/mod.abi3.so",
        f"{SITE}/mlx/lib/libmlx.dylib",
        "bin/libnot-in-site-packages.so",
    ])  # fmt: skip
    assert shared_libraries(tree_members(tmp_path), POSIX, []) == {
        "libtorch.so": f"{SITE}/torch/lib/libtorch.so",
        "libopenblas.so": f"{SITE}/numpy.libs/libopenblas.so",
        "libmlx.dylib": f"{SITE}/mlx/lib/libmlx.dylib",
    }


def test_duplicate_shared_library_basenames_are_an_error(tmp_path):
    make_files(tmp_path, [f"{SITE}/a/libz.so", f"{SITE}/b/.libs/libz.so"])
    with pytest.raises(LinkError) as error:
        shared_libraries(tree_members(tmp_path), POSIX, [])
    message = str(error.value)
    assert "two shared libraries named libz.so in site-packages" in message
    assert "a/libz.so" in message
    assert "b/.libs/libz.so" in message
    assert "dynlib_exclude" in message


def test_duplicate_message_paths_are_usable_as_dynlib_exclude(tmp_path):
    make_files(tmp_path, [f"{SITE}/a/libz.so", f"{SITE}/b/libz.so"])
    with pytest.raises(LinkError) as error:
        shared_libraries(tree_members(tmp_path), POSIX, [])
    first, second = str(error.value).split(": ", 1)[1].split(";")[0].split(" and ")
    for path, kept in ((first, second), (second, first)):
        try:
            found = shared_libraries(tree_members(tmp_path), POSIX, [path])
        except LinkError:
            pytest.fail(f"dynlib_exclude = [{path!r}] excludes nothing")
        assert found == {"libz.so": f"{SITE}/{kept}"}


def test_dynlib_exclude_patterns(tmp_path):
    make_files(tmp_path, [f"{SITE}/a/libz.so", f"{SITE}/b/.libs/libz.so", f"{SITE}/b/.libs/libpng16.so"])
    assert shared_libraries(tree_members(tmp_path), POSIX, ["b/.libs/libz*"]) == {
        "libz.so": f"{SITE}/a/libz.so",
        "libpng16.so": f"{SITE}/b/.libs/libpng16.so",
    }
    assert shared_libraries(tree_members(tmp_path), POSIX, ["b/*"]) == {"libz.so": f"{SITE}/a/libz.so"}
    assert shared_libraries(tree_members(tmp_path), POSIX, ["*.so"]) == {}


def test_shared_libraries_of_empty_tree(tmp_path):
    assert shared_libraries(tree_members(tmp_path), POSIX, []) == {}


@pytest.mark.parametrize("layout", [POSIX, WINDOWS], ids=["posix", "windows"])
def test_lower_site_packages_lead_to_sibling_layers(layout, tmp_path):
    relative = lower_site_packages(layout, ["framework-a", "cpython3_11"])
    site = tmp_path / "app-x" / layout.site_packages
    resolved = [os.path.normpath(site / rel) for rel in relative]
    assert resolved == [
        str(tmp_path / "framework-a" / layout.site_packages),
        str(tmp_path / "cpython3_11" / layout.site_packages),
    ]


def test_layers_path_files_posix():
    files = layers_path_files(POSIX, ["framework-a", "cpython3_11"])
    assert sorted(files) == [f"{SITE}/_venvstacks_layers.{ext}" for ext in ("json", "pth", "py")]
    assert files[f"{SITE}/_venvstacks_layers.pth"] == b"import _venvstacks_layers\n"
    assert files[f"{SITE}/_venvstacks_layers.py"] == (INJECTED / "_venvstacks_layers.py").read_bytes()
    config = json.loads(files[f"{SITE}/_venvstacks_layers.json"])
    assert config == {
        "site_packages": [
            "../../../../framework-a/lib/python3.11/site-packages",
            "../../../../cpython3_11/lib/python3.11/site-packages",
        ],
        "dll_directories": [],
    }


def test_layers_path_files_windows():
    files = layers_path_files(WINDOWS, ["cpython3_11"])
    config = json.loads(files["Lib/site-packages/_venvstacks_layers.json"])
    assert config["site_packages"] == ["../../../cpython3_11/Lib/site-packages"]
    # DLLs of lower layers: their Library/bin (venvstacks' convention), reached from this site-packages
    assert [os.path.normpath(f"app-x/Lib/site-packages/{d}") for d in config["dll_directories"]] == [
        os.path.normpath("cpython3_11/Library/bin")
    ]


def test_injected_module_adds_lower_layers_in_order(tmp_path):
    """_venvstacks_layers.py, run for real: lower site-packages go onto sys.path, nearest first."""
    site = tmp_path / "app-x" / SITE
    for env in ("framework-a", "cpython3_11"):
        (tmp_path / env / SITE).mkdir(parents=True)
    site.mkdir(parents=True)
    for rel, data in layers_path_files(POSIX, ["framework-a", "cpython3_11"]).items():
        (tmp_path / "app-x" / rel).write_bytes(data)
    code = "import sys, site; site.addsitedir(sys.argv[1]); print('\\n'.join(sys.path))"
    result = subprocess.run([sys.executable, "-S", "-c", code, str(site)], capture_output=True, text=True, check=True)
    path = result.stdout.splitlines()
    entries = [str(site), str(tmp_path / "framework-a" / SITE), str(tmp_path / "cpython3_11" / SITE)]
    assert all(entry in path for entry in entries)
    assert [path.index(entry) for entry in entries] == sorted(path.index(entry) for entry in entries)


def test_python_wrapper_runs_python_with_lower_libraries(tmp_path):
    """bin/python, run by bash for real: execs bin/python_ as bin/python and extends the library path."""
    layer = tmp_path / "layer dir ü"
    (layer / "bin").mkdir(parents=True)
    wrapper = layer / "bin" / "python"
    wrapper.write_text(python_wrapper("LD_LIBRARY_PATH"), encoding="utf-8")
    wrapper.chmod(0o755)
    (layer / "bin" / "python_").symlink_to(sys.executable)
    (layer / "bin" / "python3").symlink_to("python")
    code = "import os, sys; print(sys.executable); print(os.environ.get('LD_LIBRARY_PATH', '<unset>'))"
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}

    def run(name: str, extra: dict[str, str]) -> str:
        result = subprocess.run(
            [str(layer / "bin" / name), "-c", code], env=env | extra, capture_output=True, text=True, check=True
        )
        executable, library_path = result.stdout.splitlines()
        assert executable == str(wrapper)  # python runs as this layer's bin/python, not as python_
        return library_path

    assert run("python", {}) == "<unset>"  # no library_path file (postinstall not run yet)
    library_path = layer / LIBRARY_PATH_FILE
    library_path.parent.mkdir(parents=True)
    library_path.write_text("/opt/a lib:/opt/b\n", encoding="utf-8")
    assert run("python", {}) == "/opt/a lib:/opt/b"
    assert run("python3", {"LD_LIBRARY_PATH": "/pre"}) == "/pre:/opt/a lib:/opt/b"
    library_path.write_text("\n", encoding="utf-8")
    assert run("python", {}) == "<unset>"


def test_python_wrapper_macos_variable():
    text = python_wrapper("DYLD_LIBRARY_PATH")
    assert "export DYLD_LIBRARY_PATH=" in text
    assert "LD_LIBRARY_PATH=" not in text.replace("DYLD_LIBRARY_PATH", "")
    assert text.startswith("#!/usr/bin/env bash\n")
