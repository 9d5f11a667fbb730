"""Deterministic layer archives: write a directory tree as one archive, and unpack one safely.

`write_archive` produces byte-for-byte reproducible output: members are sorted by path components, owners and
times are fixed, and file modes are derived from file content (Bazel marks every output executable, so on-disk
modes cannot be trusted). `recompress` turns a tar.zst archive into the release compression, with the same tar
stream inside. `extract_archive` relies on `tarfile`'s `data` filter, and leaves nothing behind on failure;
`read_members` applies the same checks to read an archive into memory (a runtime layer is packed from its
python-build-standalone archive without writing its 2,000 files to disk and reading them back), and
`write_members_archive` writes members from memory and from anywhere on disk (a layer is packed without being
composed in a directory first).
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, NamedTuple, cast

from stacktool.errors import UserError

FORMATS = ("tar.zst", "tar.gz", "tar.xz", "zip")
FIXED_MTIME = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip entry can hold
# What makes a file executable: a shebang, ELF, Mach-O (32-bit, 64-bit, universal; either byte order).
_EXEC_MAGICS: tuple[bytes, ...] = (b"#!", b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf")
_EXEC_MAGICS += (b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"\xbe\xba\xfe\xca")
_ZIP_TYPES = {0: tarfile.REGTYPE, stat.S_IFREG: tarfile.REGTYPE, stat.S_IFLNK: tarfile.SYMTYPE}
_CORRUPT_ERRORS: tuple[type[Exception], ...] = (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error)
_CORRUPT_ERRORS += (gzip.BadGzipFile, zipfile.BadZipFile, UnicodeDecodeError)
_Filter = Callable[[tarfile.TarInfo, str], tarfile.TarInfo | None]


class ArchiveError(UserError):
    """An archive cannot be written or extracted safely."""


@dataclass(frozen=True)
class Zstd:
    """How a tar.zst archive is compressed. `threads` 0 compresses in the calling thread; from 1 on, zstd's
    multi-threaded mode cuts the input into jobs of `job_size` bytes, and its output is the same for any number of
    threads (-1: one per CPU), so it stays reproducible across machines and core counts."""

    level: int
    window_log: int = 0  # 0: the level's own
    long_distance: bool = False
    min_match: int = 0  # 0: the level's own
    search_log: int = 0  # 0: the level's own
    threads: int = 0
    job_size: int = 0  # 0: zstd's own for the level and window


# What layers are packed with: fast, for development builds. Compressed by zstd's worker threads while this thread
# writes the tar stream (jobs of 8 MiB: 0.5 % more bytes than one stream, half its time on 2 cores).
FAST = Zstd(level=3, threads=-1, job_size=8 << 20)
# stack_bundle(compression = "release"), chosen from the curve bench/bench_compression.py measures (docs/deploy.md
# says why): within 10 % of xz -6 and more than 3x faster. A 128 MiB window (window_log 27) is the largest every zstd
# decoder accepts without being told (`zstd -d`, GNU tar, python-zstandard); matches from 3 bytes on (level 16 starts
# at 5) make it 4 % smaller, and searching 8 candidates instead of 32 (search_log 3) makes it 20 % faster for 1.5 %
# more bytes.
RELEASE = Zstd(level=16, window_log=27, long_distance=True, min_match=3, search_log=3, threads=-1, job_size=32 << 20)


class Member(NamedTuple):
    """A member of a layer, named by its path below the top directory: a file (its content, or the file on disk that
    holds it), a symlink (its target) or a directory."""

    kind: str  # "dir", "file" or "symlink"
    data: bytes = b""  # a file's content, when `path` is None
    target: str = ""  # a symlink's target
    path: Path | None = None  # where the member is on disk: a file's content is read from there

    def content(self) -> bytes:
        """A file's content."""
        return self.path.read_bytes() if self.path is not None else self.data


def _check_top(top: str) -> None:
    """Require `top` to be a single, ordinary path component."""
    if not top or top in (".", "..") or "/" in top or "\\" in top or "\0" in top:
        raise ArchiveError(f"invalid top-level directory name {top!r}: must be a single path component")


def _codec(fh: BinaryIO, fmt: str, *, write: bool, zstd: Zstd = FAST) -> IO[bytes]:
    """A stream (de)compressing `fh`. Writing: zstd as `zstd` says, gzip level 6 without file name and with mtime 0,
    xz preset 6 with CRC64, so that the output depends on the input alone."""
    if fmt == "tar.zst":
        import zstandard  # here, not at the top: a host python3 without it can still write tar.gz

        if write:
            # Only the settings given: a 0 passed to from_level means zstd's default, not the level's own.
            given = {"window_log": zstd.window_log, "min_match": zstd.min_match, "search_log": zstd.search_log}
            given["job_size"] = zstd.job_size
            params = zstandard.ZstdCompressionParameters.from_level(
                zstd.level,
                enable_ldm=zstd.long_distance,
                threads=zstd.threads,
                **{name: value for name, value in given.items() if value},
            )
            compressor = zstandard.ZstdCompressor(compression_params=params)
            return cast(IO[bytes], compressor.stream_writer(fh, closefd=False))
        return cast(IO[bytes], zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True, closefd=False))
    if fmt == "tar.gz":
        gz = gzip.GzipFile(filename="", mode="wb" if write else "rb", fileobj=fh, compresslevel=6, mtime=0)
        return cast(IO[bytes], gz)
    if write:
        return lzma.LZMAFile(fh, "wb", format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=6)
    return lzma.LZMAFile(fh, "rb")


def write_archive(src: Path, dest: Path, *, top: str, fmt: str) -> None:
    """Pack directory `src` into `dest` with every member under `top/`, deterministically and atomically."""
    _check_format(top, fmt)
    if not src.is_dir():
        raise ArchiveError(f"{src}: not a directory")
    _write(tree_members(src), dest, top, fmt)


def write_members_archive(members: Mapping[str, Member], dest: Path, *, top: str, fmt: str) -> None:
    """Pack `members` (relative path -> Member; the directories that hold them are implied) into `dest` under
    `top/`, as `write_archive` packs a directory holding them."""
    _check_format(top, fmt)
    _write(members, dest, top, fmt)


def _check_format(top: str, fmt: str) -> None:
    _check_top(top)
    if fmt not in FORMATS:
        raise ArchiveError(f"unknown archive format {fmt!r} (expected one of {', '.join(FORMATS)})")


def _write(members: Mapping[str, Member], dest: Path, top: str, fmt: str) -> None:
    entries = _entries(members, top)
    partial = dest.with_name(dest.name + ".partial")
    try:
        with partial.open("wb") as fh:
            if fmt == "zip":
                _write_zip(fh, entries)
            else:
                with _codec(fh, fmt, write=True) as stream:
                    _write_tar(stream, entries)
        partial.replace(dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def recompress(src: Path, dest: Path, zstd: Zstd) -> None:
    """Writes tar.zst archive `src` again as `dest`, compressed as `zstd` says: the same tar stream, atomically."""
    import zstandard

    for path in (src, dest):
        if not path.name.endswith(".tar.zst"):
            raise ArchiveError(f"{path}: only tar.zst archives are recompressed")
    partial = dest.with_name(dest.name + ".partial")
    try:
        with (
            src.open("rb") as fh,
            _codec(fh, "tar.zst", write=False) as stream,
            partial.open("wb") as out,
            _codec(out, "tar.zst", write=True, zstd=zstd) as compressed,
        ):
            shutil.copyfileobj(stream, compressed, 1 << 20)
        partial.replace(dest)
    except zstandard.ZstdError as exc:
        partial.unlink(missing_ok=True)
        raise ArchiveError(f"{src}: corrupt or unreadable archive: {exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def tree_members(src: Path) -> dict[str, Member]:
    """Every file, symlink and directory below `src`, by relative path (a directory before what it holds); other
    file types are refused. Symlinks are not followed.

    `src` is a tree the caller wrote (the compose verb writes a layer's, an install action a wheel's), so its
    symlinks are the tree's own; a tree artifact staged by Bazel could hold absolute links to its files, or copies
    of its links."""
    members: dict[str, Member] = {}

    def visit(directory: str, prefix: str) -> None:
        with os.scandir(directory) as entries:
            for entry in entries:
                rel, path = prefix + entry.name, Path(entry.path)
                if entry.is_symlink():
                    members[rel] = Member("symlink", target=os.readlink(path), path=path)
                elif entry.is_file(follow_symlinks=False):
                    members[rel] = Member("file", path=path)
                elif entry.is_dir(follow_symlinks=False):
                    members[rel] = Member("dir", path=path)
                    visit(entry.path, rel + "/")
                else:
                    mode = entry.stat(follow_symlinks=False).st_mode
                    raise ArchiveError(
                        f"{path}: unsupported file type {stat.filemode(mode)[0]!r} (only files, dirs, symlinks)"
                    )

    visit(os.fspath(src), "")
    return members


def _entries(members: Mapping[str, Member], top: str) -> list[tuple[str, Member]]:
    """(archive name, member) of `top`, of `members` and of the directories that hold them, in path-component order
    (a directory, then what it holds, by name); symlinks checked."""
    entries: dict[str, Member] = {top: Member("dir")}
    for rel, member in members.items():
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            entries.setdefault(posixpath.join(top, *parts[:depth]), Member("dir"))
        if member.kind == "symlink":
            _link_target(member.path or Path(top, rel), rel, member.target)
        entries[posixpath.join(top, rel)] = member
    return sorted(entries.items(), key=lambda entry: entry[0].split("/"))


def _link_target(path: Path, rel: str, target: str) -> str:
    """Return the target of symlink `rel` (at `path`), provided it is relative and stays inside the tree.

    Lexically; the data filter refuses a chain escaping once resolved."""
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    if not target or posixpath.isabs(target) or resolved == ".." or resolved.startswith("../"):
        raise ArchiveError(f"symlink {path} -> {target!r}: target must be a relative path that stays inside the tree")
    return target


def _content_mode(fh: BinaryIO) -> int:
    """The normalized mode of the regular file open as `fh`: executable when its content says so."""
    return _data_mode(os.pread(fh.fileno(), 4, 0))


def _data_mode(data: bytes) -> int:
    """The normalized mode of a file whose content starts with `data`."""
    return 0o755 if data.startswith(_EXEC_MAGICS) else 0o644


def _opened(member: Member) -> BinaryIO:
    assert member.path is not None, "a member read from disk has a path"
    return member.path.open("rb")


def _write_tar(stream: IO[bytes], entries: list[tuple[str, Member]]) -> None:
    """Write `entries` as a PAX tar stream of root-owned, fixed-time members, streaming file content."""
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8") as tf:
        for name, member in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, 0, 0, "", ""
            if member.kind == "file" and member.path is None:
                info.mode, info.size = _data_mode(member.data), len(member.data)
                tf.addfile(info, io.BytesIO(member.data))
            elif member.kind == "file":
                with _opened(member) as fh:
                    info.mode, info.size = _content_mode(fh), os.fstat(fh.fileno()).st_size
                    tf.addfile(info, fh)
            else:
                link = member.kind == "symlink"
                info.type, info.mode = (tarfile.SYMTYPE, 0o777) if link else (tarfile.DIRTYPE, 0o755)
                info.linkname = member.target
                tf.addfile(info)


def _write_zip(fh: BinaryIO, entries: list[tuple[str, Member]]) -> None:
    """Write `entries` as a zip with a fixed date and unix modes in `external_attr`, deflating file content."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name, member in entries:
            info = zipfile.ZipInfo(name + "/" * (member.kind == "dir"), date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system = 3  # unix, so that `external_attr` holds a mode
            if member.kind == "dir":
                info.external_attr, info.CRC = ((stat.S_IFDIR | 0o755) << 16) | 0x10, 0  # 0x10: MS-DOS directory
                zf.mkdir(info)
            elif member.kind == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, member.target.encode())
            elif member.path is None:
                info.external_attr = (stat.S_IFREG | _data_mode(member.data)) << 16
                zf.writestr(info, member.data, compress_type=zipfile.ZIP_DEFLATED)  # at zlib's default level, 6
            else:
                info.compress_type = zipfile.ZIP_DEFLATED
                with _opened(member) as src:
                    info.external_attr = (stat.S_IFREG | _content_mode(src)) << 16
                    info.file_size = os.fstat(src.fileno()).st_size  # lets zipfile decide on zip64 up front
                    with zf.open(info, "w") as out:
                        shutil.copyfileobj(src, out, 1 << 20)


def _format(archive: Path) -> str:
    fmt = next((fmt for fmt in FORMATS if archive.name.endswith("." + fmt)), None)
    if fmt is None:
        raise ArchiveError(f"{archive}: unknown archive format (expected a name ending in one of {', '.join(FORMATS)})")
    return fmt


def _corrupt_errors(fmt: str) -> tuple[type[Exception], ...]:
    """What reading an archive of format `fmt` raises when its bytes are corrupt."""
    if fmt == "tar.zst":
        import zstandard

        return (*_CORRUPT_ERRORS, zstandard.ZstdError)
    return _CORRUPT_ERRORS


def extract_archive(archive: Path, dest_dir: Path, *, top: str) -> Path:
    """Safely unpack `archive` (whose members all live under `top/`) into `dest_dir`; return `dest_dir / top`.

    Members are extracted without their `top/` prefix into a staging `top` directory, so that the data filter keeps
    every member and link inside `top`; it is renamed into place once complete."""
    _check_top(top)
    fmt = _format(archive)
    if not dest_dir.is_dir():
        raise ArchiveError(f"{dest_dir}: extraction directory does not exist")
    final = dest_dir / top
    if os.path.lexists(final):
        raise ArchiveError(f"{final}: already exists; remove it before extracting {archive}")
    staging = Path(tempfile.mkdtemp(prefix=f".{top}.partial-", dir=dest_dir))
    try:
        (staging / top).mkdir()  # its mode from the umask, as the data filter leaves directories
        _extract(archive, fmt, staging / top, _member_filter(archive, top, _kind_on_disk))
        (staging / top).rename(final)
    except _corrupt_errors(fmt) as exc:
        raise ArchiveError(f"{archive}: corrupt or unreadable archive: {exc}") from exc
    except OSError as exc:
        raise ArchiveError(f"{archive}: cannot extract: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def read_members(archive: Path, *, top: str) -> dict[str, Member]:
    """The members of `archive` (all under `top/`) in memory, by path below `top`, as `extract_archive` would
    extract them: through the same checks, a hard link read as a copy of its target, a later member replacing an
    earlier one of the same name."""
    _check_top(top)
    fmt = _format(archive)
    members: dict[str, Member] = {}

    def kind_of(_dest: str, rel: str) -> str:
        member = members.get(rel)
        return member.kind if member else ""

    keep = _member_filter(archive, top, kind_of)
    # The data filter resolves names below a destination directory: an empty one makes its checks lexical.
    with tempfile.TemporaryDirectory(prefix=".members-") as empty:
        try:
            for member, content in _archive_members(archive, fmt):
                kept = keep(member, empty)
                if kept is None:
                    continue
                if kept.isdir():
                    members[kept.name] = Member("dir")
                elif kept.issym():
                    members[kept.name] = Member("symlink", target=kept.linkname)
                elif kept.islnk():
                    members[kept.name] = members[kept.linkname]
                else:
                    members[kept.name] = Member("file", data=content())
        except _corrupt_errors(fmt) as exc:
            raise ArchiveError(f"{archive}: corrupt or unreadable archive: {exc}") from exc
    # On disk the data filter resolves the links extracted before a member; here nothing is on disk, so a link
    # that escapes through other links (CVE-2025-4517's chains) is found once every link is known.
    for rel, member in members.items():
        if member.kind == "symlink" and _escapes(members, rel):
            raise ArchiveError(f"{archive}: member {top + '/' + rel!r}: its target leads outside {top!r} through links")
    return members


def _escapes(members: Mapping[str, Member], link: str) -> bool:
    """Whether symlink `link` resolves, following the links among `members`, to a path outside them."""
    resolved = link.split("/")[:-1]
    pending = members[link].target.split("/")
    for _ in range(64):  # links followed at most (the kernel's limit is 40)
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    return True
                resolved.pop()
                continue
            target = members.get("/".join([*resolved, part]))
            if target is not None and target.kind == "symlink":
                if posixpath.isabs(target.target):
                    return True
                pending = target.target.split("/") + pending
                break
            resolved.append(part)
        else:
            return False
    return True


def _archive_members(archive: Path, fmt: str) -> Iterator[tuple[tarfile.TarInfo, Callable[[], bytes]]]:
    """Each member of `archive`, described as a tar member, and how to read its content (before the next one)."""
    if fmt == "zip":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                yield _zip_member(archive, zf, info), lambda info=info: zf.read(info)  # type: ignore[misc]
        return
    with _tar_reader(archive, fmt) as tf:
        for member in tf:
            yield member, lambda member=member: cast(IO[bytes], tf.extractfile(member)).read()  # type: ignore[misc]


@contextmanager
def _tar_reader(archive: Path, fmt: str) -> Iterator[tarfile.TarFile]:
    """`archive` (a tar format) open for reading its members in order. errorlevel 2: tarfile raises what it would
    otherwise only log (e.g. a hard link it cannot make)."""
    with (
        archive.open("rb") as fh,
        _codec(fh, fmt, write=False) as stream,
        tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errorlevel=2) as tf,
    ):
        yield tf


def write_members(members: Mapping[str, Member], out: Path) -> None:
    """Writes `members` into the directory `out`: a file on disk as a hard link of it (a copy across file systems),
    one in memory with the mode `write_archive` gives it."""
    for rel, member in sorted(members.items(), key=lambda item: item[0].split("/")):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if member.kind == "dir":
            path.mkdir(exist_ok=True)
        elif member.kind == "symlink":
            path.symlink_to(member.target)
        elif member.path is not None:
            try:
                os.link(member.path, path)
            except OSError:
                shutil.copyfile(member.path, path)
        else:
            path.write_bytes(member.data)
            path.chmod(_data_mode(member.data))


def _extract(archive: Path, fmt: str, staging: Path, keep: _Filter) -> None:
    """Extract the members of `archive` that `keep` lets through into `staging`."""
    if fmt == "zip":
        _extract_zip(archive, staging, keep)
        return
    with _tar_reader(archive, fmt) as tf:
        tf.extractall(staging, filter=keep)


def _kind_on_disk(dest: str, rel: str) -> str:
    """What `rel` below `dest` is: "symlink", "file" (a regular file, or a link to one), "dir", or ""."""
    path = os.path.join(dest, rel)
    if os.path.islink(path):
        return "symlink"
    return "file" if os.path.isfile(path) else "dir" if os.path.isdir(path) else ""


def _member_filter(archive: Path, top: str, kind_of: Callable[[str, str], str]) -> _Filter:
    """The extraction filter: a member must lie under `top/`, then, renamed relative to `top`, pass the data filter
    and neither be nor be written through a symlink extracted before it. The data filter allows that when the link
    stays inside, but before CPython 3.11.13 chains of such links fool its checks (CVE-2025-4517). `kind_of(dest,
    rel)`: what was extracted at `rel` (see `_kind_on_disk`)."""

    def refuse(member: tarfile.TarInfo, reason: str) -> ArchiveError:
        return ArchiveError(f"{archive}: member {member.name!r}: {reason}")

    def keep(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        head, _, rel = member.name.lstrip("/").partition("/")
        if head != top:
            raise refuse(member, f"outside the top-level directory {top!r}")
        if not rel:  # `top` itself, which the staging directory stands for
            if member.isdir():
                return None
            raise refuse(member, "the top-level member must be a directory")
        renamed = member.replace(name=rel, deep=False)
        if member.islnk():
            link_top, _, renamed.linkname = member.linkname.partition("/")
            if link_top != top:
                raise refuse(member, f"hard link target {member.linkname!r} is outside {top!r}")
        try:
            filtered = tarfile.data_filter(renamed, dest)
        except tarfile.FilterError as exc:
            raise refuse(member, str(exc)) from exc
        parts = filtered.name.split("/")
        if any(kind_of(dest, "/".join(parts[: i + 1])) == "symlink" for i in range(len(parts))):
            raise refuse(member, "would replace, or be written through, a symlink")
        if filtered.islnk() and kind_of(dest, filtered.linkname) != "file":
            raise refuse(member, f"hard link target {member.linkname!r} is not a regular file extracted before it")
        return filtered

    return keep


def _extract_zip(archive: Path, staging: Path, keep: _Filter) -> None:
    """Extract a zip archive: each entry, described as a tar member, must pass the same filter as tar members."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            member = keep(_zip_member(archive, zf, info), str(staging))
            if member is None:
                continue
            path = staging / member.name
            path.parent.mkdir(parents=True, exist_ok=True)
            if member.isdir():
                path.mkdir(exist_ok=True)
            elif member.issym():
                path.symlink_to(member.linkname)
            else:
                with zf.open(info) as content, path.open("wb") as out:
                    shutil.copyfileobj(content, out, 1 << 20)
                path.chmod(member.mode)


def _zip_member(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tarfile.TarInfo:
    """Describe zip entry `info` as a tar member, its type and mode taken from the unix mode in `external_attr`."""
    unix = info.external_attr >> 16 if info.create_system == 3 else 0
    member = tarfile.TarInfo(info.filename.rstrip("/"))
    member.mode = stat.S_IMODE(unix) or (0o755 if info.is_dir() else 0o644)
    # Other types than these (fifos, devices, sockets) make a special member, which the data filter refuses.
    is_dir = info.is_dir() or stat.S_ISDIR(unix)
    member.type = tarfile.DIRTYPE if is_dir else _ZIP_TYPES.get(stat.S_IFMT(unix), tarfile.FIFOTYPE)
    if member.issym():
        if info.file_size > 4096:  # the target is read into memory: no zip bomb there
            raise ArchiveError(f"{archive}: member {info.filename!r}: symlink target too long")
        member.linkname = zf.read(info).decode("utf-8")
    return member
