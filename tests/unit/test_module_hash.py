"""Tests for stacktool.module_hash: venvstacks' hashes of launch and support modules (`app_launch_module_hash`).

The expected hashes are computed here by hand from the bytes venvstacks feeds to sha256, not with stacktool code.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from stacktool.archive import tree_members
from stacktool.contract import ModuleHash
from stacktool.errors import UserError
from stacktool.module_hash import module_hash


def hash_of(site_packages: Path, name: str) -> ModuleHash:
    """module_hash of `name` among the files below `site_packages`."""
    return module_hash(tree_members(site_packages), "", name)


# A package with nested directories, an upper-case name (sorted before lower case), a data file and an empty
# directory; relative path -> content, in the order the first test tree creates them.
PACKAGE = {
    "helpers/__init__.py": b"from helpers.a import A\n",
    "helpers/a.py": b"A = 1\n",
    "helpers/Zeta.py": b"Z = 26\n",
    "helpers/sub/__init__.py": b"",
    "helpers/sub/z.py": b"Z = 'z'\n",
    "helpers/sub/deeper/data.txt": b"\x00\x01binary\xff",
    "helpers/b_sub/x.py": b"X = 'x'\n",
}


def entry(name: str, content: bytes) -> bytes:
    """What venvstacks feeds for one file: its name, then `sha256:` and the hex sha256 of its content."""
    return name.encode() + b"sha256:" + hashlib.sha256(content).hexdigest().encode()


def make(root: Path, files: dict[str, bytes], empty_dirs: tuple[str, ...] = ()) -> Path:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    for rel in empty_dirs:
        (root / rel).mkdir(parents=True)
    return root


def test_module_file(tmp_path):
    make(tmp_path, {"hello_app.py": b"print('hi')\n"})
    expected = hashlib.sha256(entry("hello_app.py", b"print('hi')\n")).hexdigest()
    assert hash_of(tmp_path, "hello_app") == ModuleHash("hello_app", "sha256:" + expected)


def test_module_file_hash_covers_its_name_and_content(tmp_path):
    make(tmp_path, {"a.py": b"X = 1\n", "b.py": b"X = 1\n", "c.py": b"X = 2\n"})
    hashes = {name: hash_of(tmp_path, name).hash for name in ("a", "b", "c")}
    assert len(set(hashes.values())) == 3  # the same content under another name differs too
    assert hashes["a"] != "sha256:" + hashlib.sha256(b"X = 1\n").hexdigest()  # not the plain content hash


def test_package_directory(tmp_path):
    make(tmp_path, PACKAGE, empty_dirs=("helpers/empty",))
    # os.walk top-down with sorted subdirectories: a directory's name, its files (sorted), then each subdirectory
    fed = b"".join([
        b"helpers",
        entry("Zeta.py", PACKAGE["helpers/Zeta.py"]),
        entry("__init__.py", PACKAGE["helpers/__init__.py"]),
        entry("a.py", PACKAGE["helpers/a.py"]),
        b"b_sub",
        entry("x.py", PACKAGE["helpers/b_sub/x.py"]),
        b"empty",  # an empty directory counts with its name (venvstacks: shutil.copytree copies it)
        b"sub",
        entry("__init__.py", PACKAGE["helpers/sub/__init__.py"]),
        entry("z.py", PACKAGE["helpers/sub/z.py"]),
        b"deeper",
        entry("data.txt", PACKAGE["helpers/sub/deeper/data.txt"]),
    ])  # fmt: skip
    expected = ModuleHash("helpers", "sha256/" + hashlib.sha256(fed).hexdigest())
    assert hash_of(tmp_path, "helpers") == expected


def test_package_hash_does_not_depend_on_creation_order(kit, tmp_path):
    first = make(tmp_path / "first", PACKAGE, empty_dirs=("helpers/empty",))
    # the same tree created the other way round: deepest directories and last files first
    second = tmp_path / "second"
    make(second, {}, empty_dirs=("helpers/empty",))
    make(second, dict(reversed(PACKAGE.items())))
    names = [sorted(p.name for p in (root / "helpers").iterdir()) for root in (first, second)]
    assert names[0] == names[1]
    assert hash_of(first, "helpers") == hash_of(second, "helpers")
    assert hash_of(first, "helpers").hash == kit.package_module_hash(first / "helpers")


def test_package_hash_moves_with_any_change(kit, tmp_path):
    base = make(tmp_path / "base", PACKAGE)
    reference = hash_of(base, "helpers").hash
    assert reference == kit.package_module_hash(base / "helpers")
    changes = {
        "content": lambda root: (root / "helpers/sub/z.py").write_bytes(b"Z = 'Z'\n"),
        "file renamed": lambda root: (root / "helpers/a.py").rename(root / "helpers/a2.py"),
        "file moved to another directory": lambda root: (root / "helpers/b_sub/x.py").rename(root / "helpers/x.py"),
        "directory renamed": lambda root: (root / "helpers/b_sub").rename(root / "helpers/c_sub"),
        "file added": lambda root: (root / "helpers/sub/deeper/more.txt").write_bytes(b""),
        "empty directory added": lambda root: (root / "helpers/sub/empty").mkdir(),
    }
    seen = {reference}
    for what, change in changes.items():
        root = shutil.copytree(base, tmp_path / what.replace(" ", "_"))
        change(root)
        changed = hash_of(root, "helpers").hash
        assert changed == kit.package_module_hash(root / "helpers"), what
        assert changed not in seen, what
        seen.add(changed)


def test_module_file_is_preferred_to_a_directory_of_its_name(kit, tmp_path):
    """`name.py` is what Python imports rather than a `name/` directory without `__init__.py` (a namespace)."""
    make(tmp_path, {"tool.py": b"T = 1\n", "tool/data.txt": b"d"})
    assert hash_of(tmp_path, "tool") == ModuleHash("tool", kit.file_module_hash(tmp_path / "tool.py"))


def test_missing_module_is_a_user_error_naming_it(tmp_path):
    make(tmp_path, {"other.py": b"", "helpers_data/x.txt": b""})
    with pytest.raises(UserError) as error:
        hash_of(tmp_path, "helpers")
    assert str(error.value) == "module helpers is not in . (neither helpers.py nor helpers/)"


def test_package_is_preferred_to_a_module_file_of_its_name(kit, tmp_path):
    """With both `tool.py` and `tool/__init__.py`, Python imports the package: its hash is the package's."""
    make(tmp_path, {"tool.py": b"WHICH = 'file'\n", "tool/__init__.py": b"WHICH = 'package'\n", "tool/a.py": b""})
    imported = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import tool; print(tool.WHICH)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout == "package\n"
    assert hash_of(tmp_path, "tool") == ModuleHash("tool", kit.package_module_hash(tmp_path / "tool"))
    assert hash_of(tmp_path, "tool").hash != kit.file_module_hash(tmp_path / "tool.py")
