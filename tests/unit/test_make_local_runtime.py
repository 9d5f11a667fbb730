"""Tests of tools/make_local_runtime.py: real builds from the machine's pyenv CPython 3.11.7 (about 30 s in all)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import make_local_runtime as mlr
import pytest
from stacktool.archive import FIXED_MTIME
from stacktool.digest import sha256_of

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "make_local_runtime.py"
PREFIX = Path("/root/.pyenv/versions/3.11.7")
NAME = "cpython-3.11.7+local-{triple}-install_only.tar.gz"
ENV_I = ["env", "-i", "PATH=/usr/bin:/bin", "HOME=/nonexistent", "LC_ALL=C.UTF-8"]

needs_prefix = pytest.mark.skipif(not (PREFIX / "bin" / "python3.11").exists(), reason=f"{PREFIX} is absent")


def make(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *args, "--out", str(out)], capture_output=True, text=True, check=True
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """The archive built twice, into two directories."""
    if not (PREFIX / "bin" / "python3.11").exists():
        pytest.skip(f"{PREFIX} is absent")
    first = make(tmp_path_factory.mktemp("first"), "--prefix", str(PREFIX))
    second = make(tmp_path_factory.mktemp("second"), "--prefix", str(PREFIX))
    return Path(first.stdout.strip()), Path(second.stdout.strip())


@pytest.fixture(scope="module")
def extracted(built, tmp_path_factory) -> Path:
    """The runtime unpacked into a directory whose path has a space and a non-ASCII letter."""
    target = tmp_path_factory.mktemp("rt") / "with space ü"
    target.mkdir()
    with tarfile.open(built[0]) as tar:
        tar.extractall(target, filter="tar")
    return target / "python"


@needs_prefix
def test_file_name_and_sidecar(built):
    archive = built[0]
    assert archive.name == NAME.format(triple=mlr.host_triple())
    assert mlr.host_triple() in ("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu")
    assert mlr.sidecar(archive).read_text().split() == [sha256_of(archive), archive.name]


@needs_prefix
def test_reproducible(built):
    assert built[0].read_bytes() == built[1].read_bytes()
    header = built[0].read_bytes()[:10]
    assert header[3] == 0, "no FNAME flag in the gzip header"
    assert header[4:8] == b"\0\0\0\0", "gzip mtime 0"


@needs_prefix
def test_idempotent(built):
    archive = built[0]
    before = archive.stat().st_mtime_ns
    again = make(archive.parent, "--prefix", str(PREFIX))
    assert Path(again.stdout.strip()) == archive
    assert "up to date" in again.stderr
    assert archive.stat().st_mtime_ns == before


@needs_prefix
def test_members(built):
    with tarfile.open(built[0]) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda name: name.split("/"))
    assert names[0] == "python"
    for member in members:
        assert member.name.startswith("python/") or member.name == "python"
        assert ".." not in Path(member.name).parts
        assert "__pycache__" not in member.name
        assert not member.name.endswith((".pyc", ".a"))
        assert (member.uid, member.gid, member.uname, member.gname, member.mtime) == (0, 0, "", "", FIXED_MTIME)
        if member.isdir():
            assert member.mode == 0o755
        elif member.isfile():
            assert member.mode in (0o755, 0o644)
        else:
            assert member.issym(), member.name
            assert not member.linkname.startswith("/"), member.name
    modes = {m.name: m.mode for m in members}
    assert modes["python/lib/libpython3.11.so.1.0"] == modes["python/bin/python3.11"] == 0o755  # ELF
    assert modes["python/lib/python3.11/os.py"] == 0o644
    links = {m.name: m.linkname for m in members if m.issym()}
    assert links["python/bin/python3"] == "python3.11"
    assert links["python/bin/python"] == "python3.11"
    present = set(names)
    assert "python/lib/libpython3.11.so.1.0" in present
    assert "python/lib/libpython3.so" in present
    assert "python/include/python3.11/Python.h" in present
    assert "python/lib/python3.11/ensurepip/_bundled" in present
    assert not any(
        n.startswith(("python/lib/python3.11/test/", "python/lib/python3.11/idlelib/idle_test")) for n in names
    )
    assert not any("/lib-dynload/_test" in n for n in names)
    site = "python/lib/python3.11/site-packages/"
    assert any(n.startswith(site + "pip-") and n.endswith(".dist-info/RECORD") for n in names)
    assert not any(n.startswith(site + "numpy") for n in names), "the host's site-packages must not leak in"


@needs_prefix
def test_rpath(extracted):
    patchelf = shutil.which("patchelf")
    assert patchelf
    rpath = subprocess.run(
        [patchelf, "--print-rpath", str(extracted / "bin" / "python3.11")], capture_output=True, text=True, check=True
    )
    assert rpath.stdout.strip() == "$ORIGIN/../lib"
    dynamic = subprocess.run(
        ["readelf", "-d", str(extracted / "bin" / "python3.11")], capture_output=True, text=True, check=True
    ).stdout
    assert "[$ORIGIN/../lib]" in dynamic
    for library in [
        extracted / "lib" / "libpython3.11.so.1.0",
        *(extracted / "lib/python3.11/lib-dynload").glob("*.so"),
    ]:
        out = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True, check=True).stdout
        assert "RPATH" not in out and "RUNPATH" not in out, library


@needs_prefix
def test_prefix_replaced(extracted):
    for path in [
        *extracted.glob("lib/python3.11/_sysconfigdata_*.py"),
        *extracted.glob("lib/python3.11/config-*/Makefile"),
    ]:
        text = path.read_text()
        assert str(PREFIX) not in text, path
        assert "/install" in text
    assert "prefix=/install" in (extracted / "lib" / "pkgconfig" / "python3.pc").read_text()


@needs_prefix
def test_runs_relocated(extracted):
    code = (
        "import ssl, sqlite3, ctypes, venv, sys\n"
        "print(sys.prefix)\n"
        "print(*sorted({p for p in open('/proc/self/maps').read().splitlines() if 'libpython' in p}), sep='\\n')\n"
    )
    out = subprocess.run(
        [*ENV_I, str(extracted / "bin" / "python3.11"), "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == str(extracted)
    assert out[1:] and all(line.endswith(str(extracted / "lib" / "libpython3.11.so.1.0")) for line in out[1:])


@needs_prefix
def test_pip_and_venv(extracted, tmp_path):
    pip = subprocess.run([*ENV_I, str(extracted / "bin" / "pip3"), "--version"], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    assert str(extracted / "lib" / "python3.11" / "site-packages" / "pip") in pip.stdout
    venv = tmp_path / "venv ü"
    subprocess.run([*ENV_I, str(extracted / "bin" / "python3"), "-m", "venv", str(venv)], check=True)
    code = "import sys, pip; print(sys.prefix); print(sys.base_prefix)"
    out = subprocess.run(
        [*ENV_I, str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [str(venv), str(extracted)]


def fake_cpython(prefix: Path, version: str, shared: bool = True) -> Path:
    minor = ".".join(version.split(".")[:2])
    (prefix / "include" / f"python{minor}").mkdir(parents=True)
    (prefix / "include" / f"python{minor}" / "patchlevel.h").write_text(f'#define PY_VERSION "{version}"\n')
    (prefix / "bin").mkdir()
    (prefix / "bin" / f"python{minor}").write_text("")
    stdlib = prefix / "lib" / f"python{minor}"
    (stdlib / "lib-dynload").mkdir(parents=True)
    (stdlib / "os.py").write_text("")
    (stdlib / "_sysconfigdata__linux_x86_64-linux-gnu.py").write_text(f"build_time_vars = {{'prefix': '{prefix}'}}\n")
    if shared:
        (prefix / "lib" / f"libpython{minor}.so.1.0").write_text("")
    return prefix


def test_discover_picks_newest_usable_per_minor(tmp_path):
    versions = tmp_path / "versions"
    for version in ("3.11.7", "3.11.9", "3.12.1", "3.13.0rc1", "3.13.0", "3.10.13"):
        fake_cpython(versions / version, version)
    fake_cpython(versions / "3.12.4", "3.12.4", shared=False)
    (versions / "venv-like").mkdir()
    sources, skipped = mlr.discover(versions)
    assert [(s.prefix.name, s.minor) for s in sources] == [("3.11.9", "3.11"), ("3.12.1", "3.12"), ("3.13.0", "3.13")]
    reasons = {prefix.name: reason for prefix, reason in skipped}
    assert set(reasons) == {"3.11.7", "3.13.0rc1", "3.10.13", "3.12.4", "venv-like"}
    assert "--enable-shared" in reasons["3.12.4"]
    assert mlr.build_time_prefix(
        versions / "3.11.9" / "lib/python3.11/_sysconfigdata__linux_x86_64-linux-gnu.py"
    ) == str(versions / "3.11.9")


def test_unusable_prefix_is_reported(tmp_path):
    result = subprocess.run(
        [sys.executable, str(TOOL), "--prefix", str(tmp_path), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "patchlevel.h" in result.stderr
    assert result.stdout == ""
