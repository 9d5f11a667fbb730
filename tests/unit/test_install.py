"""Tests for stacktool.install (and stacktool.layout): real wheels and the local runtime archive."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from stacktool.archive import ArchiveError
from stacktool.install import POSIX_SCRIPT_HEADER, InstallError, install_wheel, unpack_runtime
from stacktool.layout import Layout

POSIX = Layout("3.11", windows=False)
WINDOWS = Layout("3.11", windows=True)
SITE = "lib/python3.11/site-packages"


def test_layouts():
    assert (POSIX.site_packages, POSIX.scripts, POSIX.runtime_python, POSIX.layer_python) == (
        SITE, "bin", "bin/python3.11", "bin/python"
    )  # fmt: skip
    assert (WINDOWS.site_packages, WINDOWS.scripts, WINDOWS.runtime_python, WINDOWS.layer_python) == (
        "Lib/site-packages", "Scripts", "python.exe", "Scripts/python.exe"
    )  # fmt: skip
    assert POSIX.headers("my_pkg") == "include/site/python3.11/my_pkg"
    assert WINDOWS.headers("my_pkg") == "Include/site/python3.11/my_pkg"
    for layout in (POSIX, WINDOWS):  # the relative path really leads back to the layer directory
        assert os.path.normpath(f"{layout.site_packages}/{layout.up_from_site_packages}") == "."


def test_posix_install_of_wheel_with_console_script(posix_trees):
    tree = posix_trees["wheel-0.45.1"]
    site = tree / SITE
    assert (site / "wheel" / "__init__.py").is_file()
    dist_info = site / "wheel-0.45.1.dist-info"
    record = (dist_info / "RECORD").read_text(encoding="utf-8")
    assert (dist_info / "INSTALLER").read_text(encoding="utf-8") == "rules_venvstacks\n"
    script = tree / "bin" / "wheel"
    data = script.read_bytes()
    assert data.startswith(POSIX_SCRIPT_HEADER)
    assert b"from wheel.cli import main" in data
    assert os.access(script, os.X_OK)
    assert str(tree).encode() not in data  # nothing absolute: the tree is shared by every layer that uses it
    recorded = {line.split(",", 1)[0] for line in record.splitlines()}
    assert "wheel/__init__.py" in recorded
    assert "wheel-0.45.1.dist-info/INSTALLER" in recorded
    assert any(path.endswith("bin/wheel") for path in recorded)
    # everything installed lives under the layer layout
    tops = {p.name for p in tree.iterdir()}
    assert tops == {"bin", "lib"}


def test_posix_script_runs_and_is_relocatable(posix_trees, tmp_path):
    """The /bin/sh header runs the `python` next to the script, wherever the tree is."""
    for where in ("first", "moved elsewhere ü"):
        tree = tmp_path / where
        shutil.copytree(posix_trees["wheel-0.45.1"], tree, symlinks=True)
        (tree / "bin" / "python").symlink_to(sys.executable)
        env = dict(os.environ, PYTHONPATH=str(tree / SITE))
        result = subprocess.run([str(tree / "bin" / "wheel"), "version"], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "wheel 0.45.1"
        shutil.rmtree(tree)


def test_posix_script_through_a_symlink(posix_trees, tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(posix_trees["wheel-0.45.1"], tree, symlinks=True)
    (tree / "bin" / "python").symlink_to(sys.executable)
    link = tmp_path / "elsewhere" / "wheel-link"
    link.parent.mkdir()
    link.symlink_to(tree / "bin" / "wheel")
    env = dict(os.environ, PYTHONPATH=str(tree / SITE))
    result = subprocess.run([str(link), "version"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "0.45.1" in result.stdout


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_windows_layout(wheels, tmp_path, arch):
    out = tmp_path / "tree"
    out.mkdir()
    install_wheel(wheels["wheel-0.45.1"], out, WINDOWS, arch)
    assert (out / "Lib" / "site-packages" / "wheel" / "__init__.py").is_file()
    assert (out / "Lib" / "site-packages" / "wheel-0.45.1.dist-info" / "RECORD").is_file()
    launcher = out / "Scripts" / "wheel.exe"
    data = launcher.read_bytes()
    assert data.startswith(b"MZ")  # a Windows executable (installer's launcher + the script as a zip)
    assert b"#!python.exe" in data
    assert {p.name for p in out.iterdir()} == {"Lib", "Scripts"}
    assert not (out / "bin").exists()


def test_windows_launcher_matches_architecture(wheels, tmp_path):
    launchers = {}
    for arch in ("x86_64", "aarch64"):
        out = tmp_path / arch
        out.mkdir()
        install_wheel(wheels["wheel-0.45.1"], out, WINDOWS, arch)
        launchers[arch] = (out / "Scripts" / "wheel.exe").read_bytes()
    assert launchers["x86_64"] != launchers["aarch64"]
    # PE machine field: 0x8664 (AMD64) or 0xAA64 (ARM64)
    machines = {}
    for arch, data in launchers.items():
        pe = int.from_bytes(data[0x3C:0x40], "little")
        assert data[pe : pe + 4] == b"PE\0\0"
        machines[arch] = int.from_bytes(data[pe + 4 : pe + 6], "little")
    assert machines == {"x86_64": 0x8664, "aarch64": 0xAA64}


def test_pure_wheel_without_scripts(posix_trees):
    tree = posix_trees["six-1.16.0"]
    assert (tree / SITE / "six.py").is_file()
    assert not (tree / "bin").exists()


def test_broken_wheel_is_an_install_error(tmp_path):
    broken = tmp_path / "broken-1.0-py3-none-any.whl"
    broken.write_bytes(b"this is not a zip file")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InstallError) as error:
        install_wheel(broken, out, POSIX, "x86_64")
    assert str(error.value).startswith("cannot install broken-1.0-py3-none-any.whl:")


def test_wheel_without_dist_info_is_an_install_error(wheels, tmp_path):
    """A zip with a wheel's name but no .dist-info is refused, naming the file."""
    hollow = tmp_path / wheels["six-1.16.0"].name
    with zipfile.ZipFile(wheels["six-1.16.0"]) as src, zipfile.ZipFile(hollow, "w") as dst:
        for info in src.infolist():
            if ".dist-info/" not in info.filename:
                dst.writestr(info, src.read(info))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InstallError, match=r"^cannot install six-1\.16\.0-py2\.py3-none-any\.whl: "):
        install_wheel(hollow, out, POSIX, "x86_64")


# --------------------------------------------------------------------------------------------------
# unpack_runtime


def test_unpack_runtime(runtime_tree):
    assert not (runtime_tree / "python").exists()  # the archive's top directory is dropped
    assert {"bin", "lib", "include"} <= {p.name for p in runtime_tree.iterdir()}
    interpreter = runtime_tree / "bin" / "python3.11"
    assert (runtime_tree / "bin" / "python3").is_symlink()  # the archive's relative links stay links
    assert not os.path.isabs(os.readlink(runtime_tree / "bin" / "python3"))
    result = subprocess.run(
        [str(interpreter), "-I", "-c", "import sys, json; print(sys.prefix); print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    prefix, version = result.stdout.splitlines()
    assert Path(prefix) == runtime_tree
    assert version == "(3, 11)"


def make_tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_unpack_runtime_without_interpreter(tmp_path):
    archive = make_tar_gz(tmp_path / "cpython-3.11.7-fake.tar.gz", {"python/bin/python3.12": b"#!/bin/sh\n"})
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InstallError) as error:
        unpack_runtime(archive, out, POSIX)
    assert str(error.value) == (
        "cpython-3.11.7-fake.tar.gz is not a CPython 3.11 install_only archive for this platform: "
        "bin/python3.11 is missing (found python3.12)"
    )


def test_unpack_runtime_of_wrong_version(runtime_archive, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InstallError) as error:
        unpack_runtime(runtime_archive, out, Layout("3.12", windows=False))
    message = str(error.value)
    assert runtime_archive.name in message
    assert "bin/python3.12 is missing (found python, python3, python3.11)" in message


def test_unpack_runtime_for_windows_layout_needs_python_exe(tmp_path):
    archive = make_tar_gz(tmp_path / "cpython-win.tar.gz", {"python/python.exe": b"MZ", "python/Lib/os.py": b""})
    out = tmp_path / "out"
    out.mkdir()
    unpack_runtime(archive, out, WINDOWS)
    assert (out / "python.exe").read_bytes() == b"MZ"
    assert (out / "Lib" / "os.py").exists()
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(InstallError, match=r"python\.exe is missing \(found no interpreter\)"):
        unpack_runtime(make_tar_gz(tmp_path / "empty.tar.gz", {"python/Lib/os.py": b""}), other, WINDOWS)


@pytest.mark.parametrize(
    "content",
    [b"not an archive at all", b"\x1f\x8b\x08\x00garbage-after-gzip-magic"],
    ids=["garbage", "truncated-gzip"],
)
def test_unpack_runtime_of_corrupt_archive(tmp_path, content):
    """A corrupt archive is reported by the archive layer (a user error the CLI prints), nothing is left."""
    archive = tmp_path / "cpython-3.11.7-broken.tar.gz"
    archive.write_bytes(content)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises((ArchiveError, InstallError)) as error:
        unpack_runtime(archive, out, POSIX)
    assert archive.name in str(error.value)
    assert list(out.iterdir()) == []


def test_unpack_runtime_archive_without_python_top(tmp_path):
    archive = make_tar_gz(tmp_path / "flat.tar.gz", {"bin/python3.11": b"#!/bin/sh\n"})
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ArchiveError, match="outside the top-level directory 'python'"):
        unpack_runtime(archive, out, POSIX)
    assert list(out.iterdir()) == []
