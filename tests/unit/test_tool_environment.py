"""python/tool_environment.py: the helper tool's interpreter, copied from an unpacked runtime with its standard
library zipped (bytecode for the listed modules) as the running interpreter lays its files out, and the zip of the
tool's pure-Python dependencies, with bytecode that is used without compiling and the same bytes on every run."""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tool_environment

X_Y = f"{sys.version_info[0]}.{sys.version_info[1]}"
STDLIB = f"lib/python{X_Y}"
ZIP = f"lib/python{X_Y.replace('.', '')}.zip"


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


def unpacked_runtime(where: Path) -> Path:
    """A runtime's python/ directory as the rules unpack it, laid out like the running interpreter's."""
    for name, text in {
        f"bin/python{X_Y}": "#!interpreter",
        f"lib/libpython{X_Y}.so.1.0": "library",
        f"{STDLIB}/os.py": "SEP = '/'\n",
        f"{STDLIB}/json/__init__.py": "A = 1\n",
        f"{STDLIB}/json/tool.py": "B = 2\n",
        f"{STDLIB}/new_syntax.py": "match = (\n",  # does not compile with this Python: kept as a source
        f"{STDLIB}/README.txt": "not a module",
        f"{STDLIB}/lib-dynload/_json.so": "extension",
    }.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_text(text)
    (where / f"bin/python{X_Y}").chmod(0o755)
    return where


def write(tmp_path: Path, *dependencies: str) -> int:
    """tool_environment.py's main on a fresh unpacked runtime; the interpreter goes to tmp_path/out."""
    listed = tmp_path / "listed.txt"
    listed.write_text("# the modules the tool imports\njson/__init__.py\nnew_syntax.py\nnot/here.py\n")
    unpacked = unpacked_runtime(tmp_path / "unpacked")
    return tool_environment.main([str(unpacked), str(tmp_path / "out"), str(listed), *dependencies])


def test_the_layout_is_the_running_interpreters() -> None:
    if os.name == "nt":
        assert tool_environment.layout()[:2] == ("Lib", f"python{X_Y.replace('.', '')}.zip")
    else:
        assert tool_environment.layout() == (STDLIB, ZIP, [f"{STDLIB}/lib-dynload"])


def test_the_interpreter_is_copied_and_its_standard_library_zipped(tmp_path: Path) -> None:
    assert write(tmp_path) == 0
    out = tmp_path / "out"
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if not p.is_dir())
    assert written == [
        f"bin/python{X_Y}",
        f"lib/libpython{X_Y}.so.1.0",
        f"{STDLIB}/lib-dynload/_json.so",
        f"{STDLIB}/os.py",
        ZIP,
    ]
    assert (out / f"{STDLIB}/lib-dynload/_json.so").read_text() == "extension"
    assert stat.S_IMODE((out / f"bin/python{X_Y}").stat().st_mode) & 0o111
    with zipfile.ZipFile(out / ZIP) as archive:
        assert archive.namelist() == ["json/__init__.py", "json/__init__.pyc", "json/tool.py", "new_syntax.py", "os.py"]
    result = run_from(out / ZIP, "import json.tool; print(json.tool.B)")
    assert (result.returncode, result.stdout) == (0, "2\n"), result.stderr


def test_wheels_are_imported_from_their_bytecode(tmp_path: Path) -> None:
    one = make_wheel(tmp_path / "one-1-py3-none-any.whl", {"one/__init__.py": "VALUE = 1\n", "one/data.json": "{}"})
    two = make_wheel(tmp_path / "two-1-py3-none-any.whl", {"two.py": "from one import VALUE\nDOUBLE = 2 * VALUE\n"})
    out = tmp_path / "deps.zip"
    assert write(tmp_path, "--dependencies", str(out), str(one), str(two)) == 0
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
        write(tmp_path, "--dependencies", str(tmp_path / name), str(wheel))
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_two_wheels_with_different_files_of_one_name_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = make_wheel(tmp_path / "one-1-py3-none-any.whl", {"shared.py": "A = 1\n"})
    two = make_wheel(tmp_path / "two-1-py3-none-any.whl", {"shared.py": "A = 2\n"})
    with pytest.raises(SystemExit):
        write(tmp_path, "--dependencies", str(tmp_path / "deps.zip"), str(one), str(two))
    assert "two wheels have different files named shared.py" in capsys.readouterr().err
    assert list(tmp_path.glob("deps.zip*")) == []
