"""python/bytecode_zip.py: the zip of the helper tool's pure-Python dependencies, with bytecode that is used without
compiling and the same bytes on every run."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import bytecode_zip
import pytest


def make_wheel(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


def run_from(zipped: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Runs `code` as the tool runs: no site, no environment, no bytecode written; `zipped` on sys.path."""
    argv = [sys.executable, "-S", "-E", "-s", "-B", "-c", f"import sys; sys.path.insert(0, {str(zipped)!r}); {code}"]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def replace_member(zipped: Path, name: str, data: str) -> None:
    with zipfile.ZipFile(zipped) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members[name] = data.encode()
    with zipfile.ZipFile(zipped, "w") as archive:
        for member, content in members.items():
            archive.writestr(member, content)


def test_wheels_are_imported_from_their_bytecode(tmp_path: Path) -> None:
    one = make_wheel(tmp_path / "one-1-py3-none-any.whl", {"one/__init__.py": "VALUE = 1\n", "one/data.json": "{}"})
    two = make_wheel(tmp_path / "two-1-py3-none-any.whl", {"two.py": "from one import VALUE\nDOUBLE = 2 * VALUE\n"})
    out = tmp_path / "deps.zip"
    assert bytecode_zip.main([str(out), "--wheel", str(one), str(two)]) == 0
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["one/__init__.py", "one/__init__.pyc", "one/data.json", "two.py", "two.pyc"]
        pyc = archive.read("two.pyc")
        source = archive.read("two.py")
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, unchecked (PEP 552)
    assert pyc[8:16] == importlib.util.source_hash(source)
    # A source that would fail is never read: the import runs the bytecode, without compiling or checking.
    replace_member(out, "two.py", "raise SystemExit('compiled from source')\n")
    result = run_from(out, "import two; print(two.DOUBLE)")
    assert (result.returncode, result.stdout) == (0, "2\n"), result.stderr


def test_the_same_wheels_give_the_same_bytes(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "pkg-1-py3-none-any.whl", {f"pkg/m{i}.py": f"X = {{'a{i}', 'b', 'c'}}\n" for i in range(20)}
    )
    for name in ("a.zip", "b.zip"):
        bytecode_zip.main([str(tmp_path / name), "--wheel", str(wheel)])
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_two_wheels_with_different_files_of_one_name_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = make_wheel(tmp_path / "one-1-py3-none-any.whl", {"shared.py": "A = 1\n"})
    two = make_wheel(tmp_path / "two-1-py3-none-any.whl", {"shared.py": "A = 2\n"})
    with pytest.raises(SystemExit):
        bytecode_zip.main([str(tmp_path / "deps.zip"), "--wheel", str(one), str(two)])
    assert "two wheels have different files named shared.py" in capsys.readouterr().err
    assert list(tmp_path.glob("deps.zip*")) == []
