"""Tests for stacktool.archive: deterministic layer archives and safe extraction."""

from __future__ import annotations

import ast
import dataclasses
import io
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import zstandard
from stacktool.archive import (
    FAST,
    FIXED_MTIME,
    FORMATS,
    RELEASE,
    ArchiveError,
    Member,
    Zstd,
    _codec,
    extract_archive,
    read_members,
    recompress,
    tree_members,
    write_archive,
    write_members,
    write_members_archive,
)

PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"
TOP = "layer"


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    """Extracted directories get their mode from the umask (the data filter ignores theirs): make it the usual one."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


# Regular files of the sample tree, with the mode the archive must give them.
FILES: dict[str, tuple[bytes, int]] = {
    "pkg/__init__.py": (b"x = 1\n", 0o644),
    "pkg/sub/deep/data.bin": (bytes(range(256)) * 40, 0o644),
    "bin/run": (b"#!/bin/sh\necho hi\n", 0o755),
    "lib/libfake.so": (b"\x7fELF\x02\x01\x01" + b"\0" * 200, 0o755),
    "lib/libmacho.dylib": (b"\xcf\xfa\xed\xfe" + b"\1" * 64, 0o755),
    "lib/fat.bin": (b"\xca\xfe\xba\xbe" + b"\2" * 64, 0o755),
    "lib/comment.txt": (b"# not a shebang\n", 0o644),
    "a/b.txt": (b"in a\n", 0o644),
    "a-b/c.txt": (b"in a-b\n", 0o644),
    "a.b": (b"dotted\n", 0o644),
    "données/naïve file ü.txt": ("héllo wörld\n".encode(), 0o644),
    "data/h1": (b"hard linked content\n", 0o644),
}
HARDLINKS = {"data/h2": "data/h1"}
SYMLINKS = {"bin/tool": "run", "pkg/alias": "sub/deep", "lib/up": "../pkg/__init__.py"}
EMPTY_DIRS = ("empty",)


def all_dirs() -> set[str]:
    """Every directory of the sample tree, relative to its root."""
    dirs = set(EMPTY_DIRS)
    for rel in [*FILES, *HARDLINKS, *SYMLINKS]:
        parts = rel.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return dirs


def build_tree(root: Path, *, reverse: bool = False, mtime: int = 1_000_000_000, file_mode: int = 0o755) -> Path:
    """Create the sample tree under `root`, in forward or reverse order, with the given mtime and file mode."""
    ops: list[tuple[str, str]] = [("file", rel) for rel in FILES]
    ops += [("symlink", rel) for rel in SYMLINKS] + [("dir", rel) for rel in EMPTY_DIRS]
    for kind, rel in reversed(ops) if reverse else ops:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "file":
            path.write_bytes(FILES[rel][0])
        elif kind == "symlink":
            path.symlink_to(SYMLINKS[rel])
        else:
            path.mkdir()
    for rel, source in HARDLINKS.items():
        (root / rel).hardlink_to(root / source)
    for path in sorted(root.rglob("*"), reverse=True):
        if not path.is_symlink():
            path.chmod(file_mode if path.is_file() else (file_mode | 0o700))
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return root


def expected_snapshot() -> dict[str, tuple[object, ...]]:
    """What extracting the sample tree's archive must produce (hard links become plain files)."""
    snap: dict[str, tuple[object, ...]] = {"": ("dir", 0o755)}
    snap.update({rel: ("dir", 0o755) for rel in all_dirs()})
    snap.update({rel: ("file", mode, content) for rel, (content, mode) in FILES.items()})
    snap.update({rel: ("file", FILES[src][1], FILES[src][0]) for rel, src in HARDLINKS.items()})
    snap.update({rel: ("symlink", target) for rel, target in SYMLINKS.items()})
    return snap


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Describe every path under `root` (kind, mode, content or target)."""
    snap: dict[str, tuple[object, ...]] = {"": ("dir", stat.S_IMODE(root.stat().st_mode))}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            snap[rel] = ("symlink", str(path.readlink()))
        elif stat.S_ISDIR(st.st_mode):
            snap[rel] = ("dir", stat.S_IMODE(st.st_mode))
        else:
            snap[rel] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes())
    return snap


@contextmanager
def open_tar(path: Path) -> Iterator[tarfile.TarFile]:
    """Open a tar.* archive for streaming reads, independently of the code under test."""
    if path.name.endswith(".tar.zst"):
        with (
            path.open("rb") as fh,
            zstandard.ZstdDecompressor().stream_reader(fh) as reader,
            tarfile.open(fileobj=reader, mode="r|") as tf,
        ):
            yield tf
    else:
        with tarfile.open(path, "r:*") as tf:
            yield tf


def member_names(path: Path) -> list[str]:
    """The member names of an archive, in archive order, without trailing slashes."""
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            return [info.filename.rstrip("/") for info in zf.infolist()]
    with open_tar(path) as tf:
        return [member.name for member in tf]


# --------------------------------------------------------------------------------------------------
# Writing


@pytest.mark.parametrize(
    ("top", "fmt", "message"),
    [(TOP, "rar", "unknown archive format"), ("a/b", "zip", "single path"), ("..", "zip", "single path")],
)
def test_write_rejects_bad_arguments(tmp_path, top, fmt, message):
    src = build_tree(tmp_path / "src")
    with pytest.raises(ArchiveError, match=message):
        write_archive(src, tmp_path / "out.zip", top=top, fmt=fmt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_the_rules_offer_the_formats_the_tool_writes():
    """`archive_format`'s values (rules/private/layer.bzl) are FORMATS: Starlark cannot import the tool's list."""
    layer_bzl = (PYTHON_DIR.parent / "rules" / "private" / "layer.bzl").read_text(encoding="utf-8")
    (listed,) = re.findall(r"^ARCHIVE_FORMATS = (\[.*\])$", layer_bzl, flags=re.MULTILINE)
    assert tuple(ast.literal_eval(listed)) == FORMATS


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path, fmt):
    src = build_tree(tmp_path / "src")
    archive = tmp_path / f"layer.{fmt}"
    write_archive(src, archive, top=TOP, fmt=fmt)
    (tmp_path / "out").mkdir()

    result = extract_archive(archive, tmp_path / "out", top=TOP)

    assert result == tmp_path / "out" / TOP
    assert snapshot(result) == expected_snapshot()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [TOP]
    assert not archive.with_name(archive.name + ".partial").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_members_sorted_by_path_components(tmp_path, fmt):
    archive = tmp_path / f"layer.{fmt}"
    write_archive(build_tree(tmp_path / "src"), archive, top=TOP, fmt=fmt)

    names = member_names(archive)

    rels = sorted(all_dirs() | set(FILES) | set(HARDLINKS) | set(SYMLINKS), key=lambda rel: rel.split("/"))
    assert names == [TOP] + [f"{TOP}/{rel}" for rel in rels]
    assert names.index(f"{TOP}/a/b.txt") == names.index(f"{TOP}/a") + 1  # `a/b.txt` right after `a`
    assert names.index(f"{TOP}/a/b.txt") < names.index(f"{TOP}/a-b") < names.index(f"{TOP}/a.b")


# Members of the sample tree held in memory instead of on disk: whole directories (their directories implied), and
# names that sort differently by path components than as strings (`a-b`, `a.b` against `a/`).
IN_MEMORY = ("pkg", "a-b", "a.b", "bin/tool", "empty", "data/h2")


@pytest.mark.parametrize("fmt", FORMATS)
def test_members_in_memory_are_written_as_if_on_disk(tmp_path, fmt):
    src = build_tree(tmp_path / "src")
    write_archive(src, tmp_path / f"disk.{fmt}", top=TOP, fmt=fmt)
    members = {}
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if not rel.startswith(IN_MEMORY) or (path.is_dir() and not path.is_symlink() and any(path.iterdir())):
            continue  # on disk; a directory that holds something is implied by what it holds
        if path.is_symlink():
            members[rel] = Member("symlink", target=os.readlink(path))
        else:
            members[rel] = Member("dir") if path.is_dir() else Member("file", data=path.read_bytes())
    for rel in sorted(members, reverse=True):
        path = src / rel
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    shutil.rmtree(src / "pkg")
    assert "pkg/sub" not in members and {"pkg/__init__.py", "a.b", "empty"} <= set(members)

    write_members_archive(tree_members(src) | members, tmp_path / f"mixed.{fmt}", top=TOP, fmt=fmt)

    assert (tmp_path / f"mixed.{fmt}").read_bytes() == (tmp_path / f"disk.{fmt}").read_bytes()


@pytest.mark.parametrize("fmt", FORMATS)
def test_read_members_reads_what_extract_extracts(tmp_path, fmt):
    archive = tmp_path / f"layer.{fmt}"
    write_archive(build_tree(tmp_path / "src"), archive, top=TOP, fmt=fmt)
    (tmp_path / "out").mkdir()
    extracted = extract_archive(archive, tmp_path / "out", top=TOP)

    write_members(read_members(archive, top=TOP), tmp_path / "written")

    assert snapshot(tmp_path / "written") == snapshot(extracted) == expected_snapshot()


@pytest.mark.parametrize("fmt", ["tar.zst", "tar.gz", "tar.xz"])
def test_tar_headers_are_normalized(tmp_path, fmt):
    archive = tmp_path / f"layer.{fmt}"
    write_archive(build_tree(tmp_path / "src"), archive, top=TOP, fmt=fmt)
    with open_tar(archive) as tf:
        members = {member.name: member for member in tf}

    for member in members.values():
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mtime == FIXED_MTIME
        assert member.type != tarfile.LNKTYPE
        assert set(member.pax_headers) <= {"path", "linkpath"}
    assert members[TOP].isdir()
    assert members[f"{TOP}/data/h2"].isreg()
    assert members[f"{TOP}/data/h2"].size == len(FILES["data/h1"][0])
    assert members[f"{TOP}/bin/tool"].issym()
    assert members[f"{TOP}/bin/tool"].linkname == "run"
    assert (members[f"{TOP}/bin/run"].mode, members[f"{TOP}/pkg/__init__.py"].mode) == (0o755, 0o644)


def test_gzip_header_has_no_name_and_no_mtime(tmp_path):
    archive = tmp_path / "layer.tar.gz"
    write_archive(build_tree(tmp_path / "src"), archive, top=TOP, fmt="tar.gz")
    header = archive.read_bytes()[:10]
    assert header[:3] == b"\x1f\x8b\x08"
    assert header[3] == 0  # no FNAME (nor any other) flag
    assert header[4:8] == b"\0\0\0\0"  # mtime 0


def test_zip_entries_are_normalized(tmp_path):
    archive = tmp_path / "layer.zip"
    write_archive(build_tree(tmp_path / "src"), archive, top=TOP, fmt="zip")
    with zipfile.ZipFile(archive) as zf:
        infos = {info.filename: info for info in zf.infolist()}
        link_target = zf.read(f"{TOP}/bin/tool")

    for info in infos.values():
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.create_system == 3
    assert infos[f"{TOP}/"].external_attr >> 16 == stat.S_IFDIR | 0o755
    assert infos[f"{TOP}/bin/run"].external_attr >> 16 == stat.S_IFREG | 0o755
    assert infos[f"{TOP}/bin/run"].compress_type == zipfile.ZIP_DEFLATED
    assert infos[f"{TOP}/a.b"].external_attr >> 16 == stat.S_IFREG | 0o644
    assert infos[f"{TOP}/bin/tool"].external_attr >> 16 == 0o120777
    assert link_target == b"run"


@pytest.mark.parametrize("fmt", FORMATS)
def test_output_is_deterministic(tmp_path, fmt):
    one = build_tree(tmp_path / "one" / "src", mtime=1_000_000_000, file_mode=0o777)
    two = build_tree(tmp_path / "two" / "elsewhere" / "tree", reverse=True, mtime=1_700_000_000, file_mode=0o600)
    write_archive(one, tmp_path / f"first.{fmt}", top=TOP, fmt=fmt)
    write_archive(two, tmp_path / f"second-name.{fmt}", top=TOP, fmt=fmt)
    write_archive(one, tmp_path / f"again.{fmt}", top=TOP, fmt=fmt)

    first = (tmp_path / f"first.{fmt}").read_bytes()
    assert first == (tmp_path / f"second-name.{fmt}").read_bytes()
    assert first == (tmp_path / f"again.{fmt}").read_bytes()


def test_write_replaces_existing_dest(tmp_path):
    dest = tmp_path / "layer.tar.gz"
    dest.write_bytes(b"old")
    write_archive(build_tree(tmp_path / "src"), dest, top=TOP, fmt="tar.gz")
    assert member_names(dest)[0] == TOP


def test_tar_gz_written_without_zstandard(tmp_path):
    """tools/make_local_runtime.py writes tar.gz under a host python3 that may lack zstandard."""
    code = "import sys; sys.modules['zstandard'] = None\nfrom pathlib import Path\nfrom stacktool.archive import *\n"
    code += "write_archive(Path(sys.argv[1]), Path(sys.argv[2]), top='layer', fmt='tar.gz')"
    dest = tmp_path / "layer.tar.gz"
    env = {**os.environ, "PYTHONPATH": str(PYTHON_DIR)}
    subprocess.run([sys.executable, "-c", code, build_tree(tmp_path / "src"), dest], env=env, check=True)
    assert member_names(dest)[0] == TOP


@pytest.mark.parametrize(
    ("links", "bad"),
    [({"l": "../outside"}, "l"), ({"sub/l": "../../x"}, "sub/l"), ({"sub/l": "../sub/../.."}, "sub/l")],
    ids=["escape", "nested-escape", "dotdot-escape"],
)
def test_symlink_escaping_src_rejected(tmp_path, links, bad):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for rel, target in links.items():
        (src / rel).symlink_to(target)

    with pytest.raises(ArchiveError, match="symlink") as info:
        write_archive(src, tmp_path / "layer.tar.zst", top=TOP, fmt="tar.zst")

    assert str(src / bad) in str(info.value)
    assert repr(links[bad]) in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_special_file_rejected(tmp_path):
    src = build_tree(tmp_path / "src")
    os.mkfifo(src / "pkg" / "pipe")
    with pytest.raises(ArchiveError, match="unsupported file type") as info:
        write_archive(src, tmp_path / "layer.zip", top=TOP, fmt="zip")
    assert "pipe" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


_FAILING_WRITE = """
import resource, signal, sys
from pathlib import Path
from stacktool.archive import write_archive

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
try:
    write_archive(Path(sys.argv[1]), Path(sys.argv[2]), top="layer", fmt=sys.argv[3])
except OSError as exc:
    print("write failed:", exc)
    sys.exit(3)
"""


@pytest.mark.parametrize("fmt", FORMATS)
def test_failed_write_leaves_no_partial_output(tmp_path, fmt):
    src = build_tree(tmp_path / "src")
    (src / "big.bin").write_bytes(os.urandom(1 << 20))  # incompressible: exceeds the file size limit below
    dest = tmp_path / f"layer.{fmt}"
    dest.write_bytes(b"previous archive")

    proc = subprocess.run(
        [sys.executable, "-c", _FAILING_WRITE, str(src), str(dest), fmt],
        env={**os.environ, "PYTHONPATH": str(PYTHON_DIR)},
        capture_output=True,
        text=True,
        check=False,
    )

    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert dest.read_bytes() == b"previous archive"
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name, "src"]


# --------------------------------------------------------------------------------------------------
# Extraction

_ZIP_KINDS = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "sym": stat.S_IFLNK, "fifo": stat.S_IFIFO, "chr": stat.S_IFCHR}
_TAR_KINDS = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}
_TAR_KINDS |= {"fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}


def make_archive(path: Path, members: list[tuple[str, str, str]], mode: int = 0o644) -> Path:
    """Write a tar.gz or a zip (by `path`'s suffix) of hand-made members: (name, kind, payload), kind one of
    file, dir, sym, hard (tar only), fifo and chr; the payload is a file's content or a link's target."""
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as zf:
            for name, kind, payload in members:
                entry = zipfile.ZipInfo(name + "/" if kind == "dir" and not name.endswith("/") else name)
                entry.create_system, entry.external_attr = 3, (_ZIP_KINDS[kind] | mode) << 16
                zf.writestr(entry, payload.encode())
        return path
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.type, info.mode = _TAR_KINDS.get(kind, tarfile.REGTYPE), mode
            if kind in ("sym", "hard"):
                info.linkname = payload
            info.size = len(payload) if kind == "file" else 0
            tf.addfile(info, io.BytesIO(payload.encode()) if kind == "file" else None)
    return path


def assert_nothing_left(tmp_path: Path, archive: Path) -> None:
    """Only the archive and the (empty) destination directory remain."""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([archive.name, "dest"])
    assert list((tmp_path / "dest").iterdir()) == []


# Each case: the members after a harmless `layer/ok`, and the member the error must name.
MALICIOUS = {
    "dotdot": ([("layer", "dir", ""), ("../evil", "file", "x")], "../evil"),
    "absolute-outside-top": ([("layer", "dir", ""), ("/abs", "file", "x")], "/abs"),
    "inner-dotdot": ([("layer/../evil", "file", "x")], "layer/../evil"),
    "outside-top": ([("layer", "dir", ""), ("other/file", "file", "x")], "other/file"),
    "top-is-file": ([("layer", "file", "x")], "layer"),
    "symlink-escape": ([("layer/sub", "dir", ""), ("layer/sub/l", "sym", "../../x")], "layer/sub/l"),
    "symlink-to-dest-dir": ([("layer/l", "sym", "..")], "layer/l"),
    "symlink-absolute": ([("layer/l", "sym", "/etc")], "layer/l"),
    "symlink-chain-escape": (
        [
            ("layer/a", "dir", ""),
            ("layer/b", "dir", ""),
            ("layer/a/s1", "sym", "../b"),
            ("layer/s2", "sym", "a/s1/../.."),
        ],
        "layer/s2",
    ),
    "write-through-symlink": (
        [("layer/sub", "dir", ""), ("layer/d", "sym", "sub"), ("layer/d/f", "file", "x")],
        "layer/d/f",
    ),
    "file-over-symlink": ([("layer/g", "file", "x"), ("layer/f", "sym", "g"), ("layer/f", "file", "y")], "layer/f"),
    "fifo": ([("layer/p", "fifo", "")], "layer/p"),
    "device": ([("layer/null", "chr", "")], "layer/null"),
    "hardlink-dotdot": ([("layer/h", "hard", "../outside")], "layer/h"),
    "hardlink-absolute": ([("layer/h", "hard", "/etc/passwd")], "layer/h"),
    "hardlink-outside-top": ([("layer/h", "hard", "other/file")], "layer/h"),
    "hardlink-escaping-symlink": ([("layer/l", "sym", "."), ("layer/h", "hard", "layer/l/../../x")], "layer/h"),
    "hardlink-missing": ([("layer/h", "hard", "layer/nope")], "layer/h"),
}
MALICIOUS_CASES = [
    pytest.param(case, fmt, id=f"{case}-{fmt}")
    for case, (members, _bad) in MALICIOUS.items()
    for fmt in ("tar.gz", "zip")
    if fmt == "tar.gz" or all(kind != "hard" for _name, kind, _payload in members)
]


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(("case", "fmt"), MALICIOUS_CASES)
def test_malicious_archive_rejected(tmp_path, case, fmt):
    members, bad = MALICIOUS[case]
    archive = make_archive(tmp_path / f"evil.{fmt}", [("layer/ok", "file", "fine"), *members])
    (tmp_path / "dest").mkdir()

    with pytest.raises(ArchiveError) as info:
        extract_archive(archive, tmp_path / "dest", top=TOP)

    assert str(archive) in str(info.value)
    assert repr(bad) in str(info.value)
    assert_nothing_left(tmp_path, archive)


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(("case", "fmt"), MALICIOUS_CASES)
def test_malicious_archive_rejected_in_memory(tmp_path, case, fmt):
    """read_members refuses what extract_archive refuses, naming the same member, though nothing is on disk."""
    members, bad = MALICIOUS[case]
    archive = make_archive(tmp_path / f"evil.{fmt}", [("layer/ok", "file", "fine"), *members])

    with pytest.raises(ArchiveError) as info:
        read_members(archive, top=TOP)

    assert str(archive) in str(info.value)
    assert repr(bad) in str(info.value)


def test_extract_accepts_foreign_tar(tmp_path):
    """Archives from other tools may lack directory members, repeat members, and use hard links or absolute names."""
    archive = make_archive(
        tmp_path / "other.tar.gz",
        [
            ("/layer/a/b/file", "file", "content"),  # the data filter strips a leading `/`
            ("layer/a/b/hard", "hard", "layer/a/b/file"),
            ("layer/a/link", "sym", "b/file"),
            ("layer/a/b", "dir", ""),  # a repeated directory
            ("layer/twice", "file", "first"),
            ("layer/twice", "file", "second"),  # the later member wins
        ],
    )
    (tmp_path / "dest").mkdir()

    root = extract_archive(archive, tmp_path / "dest", top=TOP)

    assert (root / "a" / "b" / "hard").read_bytes() == b"content"
    assert (root / "a" / "b" / "hard").stat().st_ino == (root / "a" / "b" / "file").stat().st_ino
    assert (root / "a" / "link").read_bytes() == b"content"
    assert (root / "twice").read_bytes() == b"second"
    assert stat.S_IMODE((root / "a" / "b").stat().st_mode) == 0o755


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
@pytest.mark.parametrize(
    ("mode", "expected"),
    [(0o700, 0o700), (0o777, 0o755), (0o4755, 0o755), (0o666, 0o644), (0o444, 0o644), (0o100, 0o700)],
)
def test_extract_keeps_modes_as_the_data_filter_leaves_them(tmp_path, fmt, mode, expected):
    archive = make_archive(tmp_path / f"modes.{fmt}", [("layer", "dir", ""), ("layer/x", "file", "")], mode=mode)
    (tmp_path / "dest").mkdir()

    root = extract_archive(archive, tmp_path / "dest", top=TOP)

    assert stat.S_IMODE((root / "x").stat().st_mode) == expected
    assert stat.S_IMODE(root.stat().st_mode) == 0o755


def test_extract_reads_zstd_across_frames(tmp_path):
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in ("layer/one", "layer/two"):
            info = tarfile.TarInfo(name)
            info.size = len(name) * 300
            tf.addfile(info, io.BytesIO(name.encode() * 300))
    data, compressor = plain.getvalue(), zstandard.ZstdCompressor()
    archive = tmp_path / "frames.tar.zst"
    archive.write_bytes(compressor.compress(data[:2048]) + compressor.compress(data[2048:]))
    (tmp_path / "dest").mkdir()

    root = extract_archive(archive, tmp_path / "dest", top=TOP)

    assert (root / "two").read_bytes() == b"layer/two" * 300


def test_extract_refuses_existing_top(tmp_path):
    archive = tmp_path / "layer.tar.zst"
    write_archive(build_tree(tmp_path / "src"), archive, top=TOP, fmt="tar.zst")
    (tmp_path / "dest" / TOP).mkdir(parents=True)
    (tmp_path / "dest" / TOP / "keep").write_text("mine")

    with pytest.raises(ArchiveError, match="already exists"):
        extract_archive(archive, tmp_path / "dest", top=TOP)

    assert [p.name for p in (tmp_path / "dest").iterdir()] == [TOP]
    assert [p.name for p in (tmp_path / "dest" / TOP).iterdir()] == ["keep"]


@pytest.mark.parametrize(("name", "top", "message"), [("layer.zip", "other", "outside"), ("layer.tgz", TOP, "format")])
def test_extract_with_wrong_top_or_format_rejected(tmp_path, name, top, message):
    archive = tmp_path / name
    write_archive(build_tree(tmp_path / "src"), archive, top=TOP, fmt="zip")
    shutil.rmtree(tmp_path / "src")
    (tmp_path / "dest").mkdir()

    with pytest.raises(ArchiveError, match=message):
        extract_archive(archive, tmp_path / "dest", top=top)

    assert_nothing_left(tmp_path, archive)


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_archive_rejected(tmp_path, fmt):
    src = build_tree(tmp_path / "src")
    (src / "big.bin").write_bytes(os.urandom(200_000))
    full = tmp_path / f"full.{fmt}"
    write_archive(src, full, top=TOP, fmt=fmt)
    archive = tmp_path / f"cut.{fmt}"
    data = full.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    full.unlink()
    shutil.rmtree(src)
    (tmp_path / "dest").mkdir()

    with pytest.raises(ArchiveError, match="corrupt or unreadable") as info:
        extract_archive(archive, tmp_path / "dest", top=TOP)

    assert str(archive) in str(info.value)
    assert_nothing_left(tmp_path, archive)


def compressible(size: int, seed: int = 7) -> bytes:
    """`size` bytes that compress somewhat, as a layer's files do (random words from a small vocabulary)."""
    import random

    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(2, 12)) for _ in range(4096)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words)
    return bytes(out[:size])


def zstd_frame_window(path: Path) -> int:
    return zstandard.get_frame_parameters(path.read_bytes()[:18]).window_size


def test_recompress_keeps_the_tar_stream_in_the_release_compression(tmp_path):
    src = build_tree(tmp_path / "src")
    (src / "big.bin").write_bytes(compressible(3 << 20))
    packed, release = tmp_path / "packed" / "layer.tar.zst", tmp_path / "release" / "layer.tar.zst"
    packed.parent.mkdir()
    release.parent.mkdir()
    write_archive(src, packed, top=TOP, fmt="tar.zst")

    recompress(packed, release, RELEASE)

    tar_of = zstandard.ZstdDecompressor().decompressobj
    assert tar_of().decompress(release.read_bytes()) == tar_of().decompress(packed.read_bytes())
    assert release.stat().st_size < packed.stat().st_size
    assert zstd_frame_window(release) == 1 << RELEASE.window_log  # what decoders must accept, and do by default
    unpacked = snapshot(extract_archive(release, release.parent, top=TOP))
    assert unpacked == snapshot(extract_archive(packed, packed.parent, top=TOP))


@pytest.mark.skipif(shutil.which("zstd") is None, reason="no zstd command here to decompress with")
def test_release_archives_decompress_with_the_zstd_command_as_it_comes(tmp_path):
    """A 128 MiB window is the largest `zstd -d` (and GNU tar, which calls it) accepts without `--long`."""
    src = build_tree(tmp_path / "src")
    packed, release = tmp_path / "packed.tar.zst", tmp_path / "release.tar.zst"
    write_archive(src, packed, top=TOP, fmt="tar.zst")
    recompress(packed, release, RELEASE)
    listed = subprocess.run(["tar", "-I", "zstd", "-tf", str(release)], capture_output=True, text=True, check=True)
    assert listed.stdout.splitlines()[0].rstrip("/") == TOP


@pytest.mark.parametrize("setting", [RELEASE, FAST], ids=["release", "fast"])
def test_compression_is_the_same_for_any_number_of_threads(tmp_path, setting):
    """zstd's multi-threaded mode writes the same bytes for any number of workers: archives built on machines with
    different core counts are identical. Jobs of 1 MiB (instead of RELEASE's 32 MiB or FAST's 8 MiB) make a few MiB
    of input span several jobs, which is what the workers share."""
    assert setting.threads == -1  # one worker per CPU: what this test shows does not change the bytes
    data = compressible(3 << 20)
    small_jobs = dataclasses.replace(setting, job_size=1 << 20)

    def compressed(zstd: Zstd) -> bytes:
        out = io.BytesIO()
        with _codec(out, "tar.zst", write=True, zstd=zstd) as stream:
            stream.write(data)
        return out.getvalue()

    by_threads = {n: compressed(dataclasses.replace(small_jobs, threads=n)) for n in (1, 3, -1)}
    assert len(set(by_threads.values())) == 1
    assert by_threads[1] != compressed(setting)  # one job of RELEASE's or FAST's size: small jobs split the input
    assert zstandard.ZstdDecompressor().decompressobj().decompress(by_threads[1]) == data


@pytest.mark.parametrize("level", [3, 16, 19])
def test_zstd_settings_left_unset_are_the_levels_own(level):
    data = compressible(1 << 20)
    out = io.BytesIO()
    with _codec(out, "tar.zst", write=True, zstd=Zstd(level=level)) as stream:
        stream.write(data)
    reference = io.BytesIO()
    with zstandard.ZstdCompressor(level=level).stream_writer(reference, closefd=False) as stream:
        stream.write(data)
    assert out.getvalue() == reference.getvalue()


def test_recompress_refuses_other_formats_and_corrupt_input_leaving_nothing(tmp_path):
    src = build_tree(tmp_path / "src")
    gz = tmp_path / "layer.tar.gz"
    write_archive(src, gz, top=TOP, fmt="tar.gz")
    with pytest.raises(ArchiveError, match=r"only tar\.zst archives are recompressed"):
        recompress(gz, tmp_path / "out.tar.zst", RELEASE)
    corrupt = tmp_path / "corrupt.tar.zst"
    corrupt.write_bytes(b"not zstd at all" * 100)
    with pytest.raises(ArchiveError, match="corrupt or unreadable archive") as info:
        recompress(corrupt, tmp_path / "out.tar.zst", RELEASE)
    assert str(corrupt) in str(info.value)
    assert not list(tmp_path.glob("out.tar.zst*"))
