"""Tests for stacktool.install (and stacktool.layout): real wheels and the local runtime archive."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import posixpath
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from runtime_fixtures import PE, make_fixture_runtime
from stacktool.archive import ArchiveError, Member, read_members, tree_members, write_members
from stacktool.install import (
    POSIX_SCRIPT_HEADER,
    InstallError,
    install_wheel,
    runtime_members,
    strip_installer_tooling,
)
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


def test_windows_launchers_do_not_depend_on_when_or_where_they_are_made(wheels, tmp_path):
    """installer appends the script to the launcher as a zip dated now and marked with the host's OS: the layer's
    launchers are dated 1980 and marked Unix, so two installs at different times give the same bytes."""
    out = tmp_path / "tree"
    out.mkdir()
    install_wheel(wheels["wheel-0.45.1"], out, WINDOWS, "x86_64")
    data = (out / "Scripts" / "wheel.exe").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as appended:
        (info,) = appended.infolist()
        assert (info.filename, info.date_time, info.create_system) == ("__main__.py", (1980, 1, 1, 0, 0, 0), 3)
        assert b"from wheel.cli import main" in appended.read(info)
    assert data.startswith(b"MZ") and data[: info.header_offset].endswith(b"#!python.exe\n")  # launcher, shebang
    record = (out / "Lib/site-packages/wheel-0.45.1.dist-info/RECORD").read_text(encoding="utf-8")
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    assert f"../../Scripts/wheel.exe,sha256={digest},{len(data)}" in record.splitlines()


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
# runtime_members


def test_runtime_members_written_out_run(runtime_archive, tmp_path):
    """The local runtime's files, read from its archive without its `python/` top and written out, run."""
    members = runtime_members(runtime_archive, POSIX)
    assert not any(rel == "python" or rel.startswith("python/") for rel in members)
    runtime_tree = tmp_path / "runtime"
    write_members(members, runtime_tree)
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


def test_runtime_members_without_interpreter(tmp_path):
    archive = make_tar_gz(tmp_path / "cpython-3.11.7-fake.tar.gz", {"python/bin/python3.12": b"#!/bin/sh\n"})
    with pytest.raises(InstallError) as error:
        runtime_members(archive, POSIX)
    assert str(error.value) == (
        "cpython-3.11.7-fake.tar.gz is not a CPython 3.11 install_only archive for this platform: "
        "bin/python3.11 is missing (found python3.12)"
    )


def test_runtime_members_of_wrong_version(runtime_archive):
    with pytest.raises(InstallError) as error:
        runtime_members(runtime_archive, Layout("3.12", windows=False))
    message = str(error.value)
    assert runtime_archive.name in message
    assert "bin/python3.12 is missing (found python, python3, python3.11)" in message


def test_runtime_members_for_windows_layout_need_python_exe(tmp_path):
    archive = make_tar_gz(tmp_path / "cpython-win.tar.gz", {"python/python.exe": b"MZ", "python/Lib/os.py": b""})
    members = runtime_members(archive, WINDOWS)
    assert (members["python.exe"].data, members["Lib/os.py"].kind) == (b"MZ", "file")
    with pytest.raises(InstallError, match=r"python\.exe is missing \(found no interpreter\)"):
        runtime_members(make_tar_gz(tmp_path / "empty.tar.gz", {"python/Lib/os.py": b""}), WINDOWS)


@pytest.mark.parametrize(
    "content",
    [b"not an archive at all", b"\x1f\x8b\x08\x00garbage-after-gzip-magic"],
    ids=["garbage", "truncated-gzip"],
)
def test_runtime_members_of_corrupt_archive(tmp_path, content):
    """A corrupt archive is reported by the archive layer (a user error the CLI prints)."""
    archive = tmp_path / "cpython-3.11.7-broken.tar.gz"
    archive.write_bytes(content)
    with pytest.raises((ArchiveError, InstallError)) as error:
        runtime_members(archive, POSIX)
    assert archive.name in str(error.value)


def test_runtime_members_of_archive_without_python_top(tmp_path):
    archive = make_tar_gz(tmp_path / "flat.tar.gz", {"bin/python3.11": b"#!/bin/sh\n"})
    with pytest.raises(ArchiveError, match="outside the top-level directory 'python'"):
        runtime_members(archive, POSIX)


# --------------------------------------------------------------------------------------------------
# strip_installer_tooling: a published runtime has no installer tooling and no scripts but the interpreter's


def files_below(root: Path) -> set[str]:
    """Relative paths of every file and symlink below `root`."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def files_of(members: dict[str, Member]) -> set[str]:
    """Paths of every file and symlink among `members`."""
    return {rel for rel, member in members.items() if member.kind != "dir"}


def recorded_paths(members: dict[str, Member], site: str, dist_info: str) -> set[str]:
    """The paths a dist-info's RECORD lists, relative to the layer (its rows are relative to site-packages)."""
    rows = (line.split(",")[0] for line in members[f"{site}/{dist_info}/RECORD"].content().decode().splitlines())
    return {posixpath.normpath(f"{site}/{row}") for row in rows if row}


def test_strip_installer_tooling_of_the_local_runtime(runtime_archive, posix_trees):
    """pip and setuptools (shipped by ensurepip) and an installed `wheel` go with their dist-info and every file their
    RECORD lists; bin keeps the interpreter's own entries; the directories they leave empty go; the rest stays."""
    members = read_members(runtime_archive, top="python")
    for key in ("wheel-0.45.1", "six-1.16.0"):
        members.update(tree_members(posix_trees[key]))
    # scripts python-build-standalone ships besides the interpreter, in no RECORD
    members["bin/pydoc3.11"] = Member("file", data=b"#!/bin/sh\n")
    members["bin/pydoc3"] = Member("symlink", target="pydoc3.11")
    members["bin/python3.11-config"] = Member("file", data=b"#!/bin/sh\n")
    dist_infos = {rel.split("/")[3] for rel in members if rel.startswith(f"{SITE}/") and ".dist-info" in rel}
    tooling = sorted(name for name in dist_infos if name.split("-")[0] in ("pip", "setuptools", "wheel"))
    assert tooling == ["pip-23.2.1.dist-info", "setuptools-65.5.0.dist-info", "wheel-0.45.1.dist-info"]
    listed = set().union(*(recorded_paths(members, SITE, name) for name in tooling))
    expected = {"bin/pip", "bin/pip3.11", "bin/wheel", f"{SITE}/pip/__init__.py", f"{SITE}/distutils-precedence.pth"}
    assert expected <= listed  # RECORDs list scripts as ../../../bin/<name>
    with tarfile.open(runtime_archive) as tar:  # the interpreter's own entries of the archive's bin/
        interpreter_names = {
            name for m in tar.getmembers() if (name := m.name.removeprefix("python/bin/")) != m.name and "/" not in name
        }
    interpreter_names = {name for name in interpreter_names if name.startswith("python")} | {"python3.11-config"}
    assert {"python", "python3", "python3.11"} <= interpreter_names
    before = files_of(members)
    in_dist_info = {path for path in before if any(path.startswith(f"{SITE}/{name}/") for name in tooling)}
    other_scripts = {path for path in before if path.startswith("bin/") and path[4:] not in interpreter_names}
    assert {"bin/pip", "bin/pip3", "bin/wheel", "bin/pydoc3", "bin/pydoc3.11"} <= other_scripts
    kept = before - listed - in_dist_info - other_scripts
    contents = {path: members[path] for path in kept if path.startswith(SITE)}

    strip_installer_tooling(members, POSIX)

    after = files_of(members)
    assert after == kept
    assert {rel[4:] for rel in members if rel.startswith("bin/")} == interpreter_names
    # what the RECORDs emptied is gone, down to site-packages itself: only the other packages are left there
    in_site = {rel[len(SITE) + 1 :].split("/")[0] for rel in members if rel.startswith(f"{SITE}/")}
    assert sorted(in_site) == ["README.txt", "six-1.16.0.dist-info", "six.py"]
    for directory in (rel for rel, member in members.items() if member.kind == "dir" and rel.startswith(SITE)):
        assert any(rel.startswith(directory + "/") for rel in after), directory
    assert {path: members[path] for path in after if path.startswith(SITE)} == contents
    assert members["lib/python3.11/os.py"].kind == "file"  # the standard library is untouched


def test_composed_runtime_layer_has_no_pip(published_runtime):
    """The runtime layer composed from the local archive: no installer tooling, its python runs without it."""
    _, runtime = published_runtime
    site = runtime.tree / SITE
    assert not [p.name for p in site.iterdir() if p.name.split("-")[0] in ("pip", "setuptools", "_distutils_hack")]
    assert sorted(p.name for p in (runtime.tree / "bin").iterdir()) == ["python", "python3", "python3.11"]
    python = str(runtime.tree / "bin" / "python3.11")
    no_pip = subprocess.run([python, "-I", "-c", "import pip"], capture_output=True, text=True, check=False)
    assert no_pip.returncode == 1
    assert "ModuleNotFoundError: No module named 'pip'" in no_pip.stderr
    works = subprocess.run(
        [python, "-I", "-c", "import ssl, sqlite3; print(ssl.OPENSSL_VERSION)"], capture_output=True, text=True
    )
    assert works.returncode == 0, works.stderr
    assert works.stdout.startswith("OpenSSL")


def test_strip_installer_tooling_of_a_windows_runtime(tmp_path):
    """A Windows runtime (the win_amd64 fixture plus pip as PBS ships it): Scripts/pip.exe, listed by pip's RECORD
    as ../../Scripts/pip.exe, goes with pip's dist-info; a script RECORD does not list goes too; the rest stays."""
    fixture = make_fixture_runtime(tmp_path, "win_amd64")
    pip_files = {
        "python/Scripts/pip.exe": PE + b"pip launcher",
        "python/Scripts/pip3.exe": PE + b"not in RECORD",
        "python/Lib/site-packages/pip/__init__.py": b"__version__ = '24.0'\n",
        "python/Lib/site-packages/pip/_internal/__init__.py": b"",
        "python/Lib/site-packages/pip-24.0.dist-info/METADATA": b"Name: pip\nVersion: 24.0\n",
        "python/Lib/site-packages/pip-24.0.dist-info/direct_url.json": b"{}",  # not in RECORD either
    }
    unlisted = ("python/Scripts/pip3.exe", "python/Lib/site-packages/pip-24.0.dist-info/direct_url.json")
    rows = [posixpath.relpath(name, "python/Lib/site-packages") for name in pip_files if name not in unlisted]
    rows += ["pip-24.0.dist-info/RECORD", "../../../victim.txt"]  # the last one outside the runtime: left alone
    record = "".join(f"{row},,\n" for row in rows)
    assert record.startswith("../../Scripts/pip.exe,,\n")
    pip_files["python/Lib/site-packages/pip-24.0.dist-info/RECORD"] = record.encode()
    archive = tmp_path / "with-pip" / fixture.name
    archive.parent.mkdir()
    with tarfile.open(fixture) as src, tarfile.open(archive, "w:gz") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        for name, data in pip_files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    plain, members = runtime_members(fixture, WINDOWS), read_members(archive, top="python")
    assert {"Scripts/pip.exe", "Lib/site-packages/pip-24.0.dist-info/RECORD"} <= files_of(members)

    strip_installer_tooling(members, WINDOWS)

    assert not any(rel.startswith(("Scripts/pip", "Lib/site-packages/pip")) for rel in members)
    assert {rel: m for rel, m in members.items() if m.kind != "dir"} == {
        rel: m for rel, m in plain.items() if m.kind != "dir"
    }  # exactly the fixture runtime is left


# --------------------------------------------------------------------------------------------------
# TolerantWheelFile: malformed RECORD rows install with a warning, unsafe paths are still refused

MLX_EXTENSION = "mlx/core.cpython-311-x86_64-linux-gnu.so"


def record_rows(tree: Path, site: str, dist_info: str) -> dict[str, tuple[str, str]]:
    lines = (tree / site / dist_info / "RECORD").read_text(encoding="utf-8").splitlines()
    return {path: (digest, size) for path, digest, size in (line.rsplit(",", 2) for line in lines)}


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_mlx_wheel_with_a_hash_missing_its_algorithm_installs_with_one_warning(mlx_wheel, tmp_path, capsys):
    """MLX 0.29.0's Linux wheel lists its extension module's hash without `sha256=`: installed (as uv and pip do),
    with one warning naming the wheel and the file; the installed RECORD has that file's proper hash."""
    with zipfile.ZipFile(mlx_wheel) as zf:
        shipped = zf.read("mlx-0.29.0.dist-info/RECORD").decode()
        extension = zf.read(MLX_EXTENSION)
    bare = base64.urlsafe_b64encode(hashlib.sha256(extension).digest()).rstrip(b"=").decode()
    assert f"{MLX_EXTENSION},{bare},{len(extension)}" in shipped.splitlines()  # the malformed row, as shipped
    out = tmp_path / "tree"
    out.mkdir()
    install_wheel(mlx_wheel, out, POSIX, "x86_64")
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"warning: {mlx_wheel.name}: RECORD entry for {MLX_EXTENSION} is malformed "
        "(`hash` does not follow the required format); its hash is not checked"
    ]
    installed = out / SITE / MLX_EXTENSION
    assert installed.read_bytes() == extension
    rows = record_rows(out, SITE, "mlx-0.29.0.dist-info")
    assert rows[MLX_EXTENSION] == (f"sha256={bare}", str(len(extension)))
    assert rows[MLX_EXTENSION][0] == record_hash(installed.read_bytes())


def make_wheel(path: Path, files: dict[str, bytes], record: list[str] | None = None) -> Path:
    """A wheel of distribution `demo` 1.0 with `files`; its RECORD is `record` (default: a proper row per file)."""
    dist_info = "demo-1.0.dist-info"
    files = files | {
        f"{dist_info}/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    rows = [f"{name},{record_hash(data)},{len(data)}" for name, data in files.items()] if record is None else record
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{dist_info}/RECORD", "".join(f"{row}\n" for row in [*rows, f"{dist_info}/RECORD,,"]))
    return path


def test_unparseable_record_row_is_left_out_with_a_warning(tmp_path, capsys):
    init, extra = b"from demo.extra import X\n", b"X = 1\n"
    unparseable = "demo/extra.py,sha256=abc"  # two elements, not three
    record = [f"demo/__init__.py,{record_hash(init)},{len(init)}", unparseable]
    wheel = make_wheel(
        tmp_path / "demo-1.0-py3-none-any.whl", {"demo/__init__.py": init, "demo/extra.py": extra}, record
    )
    out = tmp_path / "tree"
    out.mkdir()
    install_wheel(wheel, out, POSIX, "x86_64")
    assert capsys.readouterr().err.splitlines() == [
        f"warning: demo-1.0-py3-none-any.whl: RECORD row {unparseable!r} cannot be parsed; left out"
    ]
    assert (out / SITE / "demo" / "extra.py").read_bytes() == extra  # its file is installed all the same
    rows = record_rows(out, SITE, "demo-1.0.dist-info")
    assert rows["demo/extra.py"] == (record_hash(extra), str(len(extra)))
    assert rows["demo/__init__.py"] == (record_hash(init), str(len(init)))


def test_well_formed_wheel_installs_without_warning(tmp_path, capsys):
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", {"demo/__init__.py": b"X = 1\n"})
    out = tmp_path / "tree"
    out.mkdir()
    install_wheel(wheel, out, POSIX, "x86_64")
    assert capsys.readouterr().err == ""
    assert (out / SITE / "demo" / "__init__.py").read_bytes() == b"X = 1\n"


@pytest.mark.parametrize("row", ["proper", "unparseable", "malformed hash"])
@pytest.mark.parametrize(
    "member",
    [
        "../../../../evil.py",  # the root scheme (site-packages, three levels below the layer)
        "demo-1.0.data/data/../evil.py",  # the data scheme is the layer itself
        "demo-1.0.data/scripts/../../evil.py",
        "demo-1.0.data/headers/../../../../../evil.py",
        "ABSOLUTE",  # an absolute member name
    ],
)
def test_member_escaping_the_layer_is_refused(tmp_path, member, row):
    """A wheel member that would land outside the layer is refused, whatever its RECORD row looks like, and nothing
    is written outside the layer."""
    work = tmp_path / "work"
    out = work / "layer"
    out.mkdir(parents=True)
    member = str(tmp_path / "evil.py") if member == "ABSOLUTE" else member
    data = b"print('escaped')\n"
    rows = {
        "proper": f"{member},{record_hash(data)},{len(data)}",
        "unparseable": f"{member},{record_hash(data)}",
        "malformed hash": f"{member},{record_hash(data).removeprefix('sha256=')},{len(data)}",
    }
    init = b""
    record = [f"demo/__init__.py,{record_hash(init)},0", rows[row]]
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", {"demo/__init__.py": init, member: data}, record)
    with pytest.raises(InstallError, match=r"^cannot install demo-1\.0-py3-none-any\.whl: "):
        install_wheel(wheel, out, POSIX, "x86_64")
    assert files_below(tmp_path) - {f"work/layer/{path}" for path in files_below(out)} == {wheel.name}
    assert not list(tmp_path.rglob("evil.py"))
