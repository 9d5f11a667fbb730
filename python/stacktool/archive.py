"""Deterministic layer archives: write a directory tree as one archive, and unpack one safely.

`write_archive` produces byte-for-byte reproducible output: members are sorted by path components,
owners and times are fixed, and file modes are derived from file content (Bazel marks every output
executable, so on-disk modes cannot be trusted). `extract_archive` refuses anything that could write
outside its destination and leaves nothing behind when it fails.
"""

from __future__ import annotations

import contextlib
import gzip
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Literal, cast

import zstandard

from stacktool.errors import UserError
from stacktool.staging import unstaged

FORMATS = ("tar.zst", "tar.gz", "tar.xz", "zip")

FIXED_MTIME = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip entry can hold
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_DIR_MODE = 0o755
_EXEC_MODE = 0o755
_FILE_MODE = 0o644
_SYMLINK_MODE = 0o777
_EXEC_MAGICS = (
    b"#!",
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",  # Mach-O 32-bit
    b"\xce\xfa\xed\xfe",
    b"\xfe\xed\xfa\xcf",  # Mach-O 64-bit
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O universal (fat)
    b"\xbe\xba\xfe\xca",
)
_DEFAULT_LEVELS = {"tar.zst": 3, "tar.gz": 6, "tar.xz": 6, "zip": 6}
_LEVEL_RANGES = {"tar.zst": (1, 22), "tar.gz": (0, 9), "tar.xz": (0, 9), "zip": (0, 9)}
_COPY_CHUNK = 1 << 20
_MAX_ZIP_SYMLINK = 4096
_CORRUPT_ERRORS = (
    tarfile.TarError,
    zstandard.ZstdError,
    EOFError,
    lzma.LZMAError,
    zlib.error,
    gzip.BadGzipFile,
    zipfile.BadZipFile,
    UnicodeDecodeError,
)


class ArchiveError(UserError):
    """An archive cannot be written or extracted safely."""


@dataclass(frozen=True)
class _Entry:
    """One member to write: its archive name (no trailing slash), where it lives, and what it is."""

    name: str
    path: Path
    kind: Literal["dir", "file", "symlink"]
    target: str = ""


# --------------------------------------------------------------------------------------------------
# Shared helpers


def archive_format(path: Path) -> str:
    """Return the archive format named by `path`'s suffix, one of `FORMATS`."""
    for fmt in FORMATS:
        if path.name.endswith("." + fmt):
            return fmt
    raise ArchiveError(f"{path}: unknown archive format (expected a name ending in one of {', '.join(FORMATS)})")


def _check_top(top: str) -> None:
    """Require `top` to be a single, ordinary path component."""
    if not top or top in (".", "..") or "/" in top or "\\" in top or "\0" in top:
        raise ArchiveError(f"invalid top-level directory name {top!r}: must be a single path component")


def _check_format(fmt: str) -> None:
    """Require `fmt` to be one of `FORMATS`."""
    if fmt not in FORMATS:
        raise ArchiveError(f"unknown archive format {fmt!r} (expected one of {', '.join(FORMATS)})")


def _resolve_level(fmt: str, level: int | None) -> int:
    """Return the compression level for `fmt`: `level`, or the format's default when None."""
    if level is None:
        return _DEFAULT_LEVELS[fmt]
    low, high = _LEVEL_RANGES[fmt]
    if not low <= level <= high:
        raise ArchiveError(f"compression level {level} out of range {low}..{high} for {fmt}")
    return level


def _is_within(path: str, root: str) -> bool:
    """Whether the absolute normalized `path` is `root` or below it."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _escapes(normalized: str) -> bool:
    """Whether a `posixpath.normpath`-ed relative path leaves its starting directory."""
    return normalized == ".." or normalized.startswith("../")


def _content_mode(head: bytes) -> int:
    """Return the normalized mode of a regular file whose content starts with `head`."""
    return _EXEC_MODE if head.startswith(_EXEC_MAGICS) else _FILE_MODE


# --------------------------------------------------------------------------------------------------
# Scanning the source tree


def _scan(src: Path, top: str, symlinks: Mapping[str, str] | None = None) -> list[_Entry]:
    """List every member under `src` in path-component order, validating file types and symlinks.

    With `symlinks` (relative path -> target, as the tree's producer recorded them), those paths are archived as
    these symlinks whatever is staged there, and no other symlink may be: an executor may hand a tree artifact over
    with its symlinks dereferenced (Bazel defines tree artifacts as regular files; remote execution and building
    without the bytes do that), so the archive must not depend on how the tree was staged.
    """
    src_real = os.path.realpath(src)
    entries = []
    seen: set[str] = set()
    stack: list[tuple[Path, str]] = [(src, "")]
    while stack:
        path, rel = stack.pop()
        if symlinks is not None and rel in symlinks:
            name = posixpath.join(top, rel)
            entries.append(_Entry(name, path, "symlink", _recorded_symlink_target(rel, symlinks[rel])))
            seen.add(rel)
            continue
        entry = _classify(path, rel, top, src_real)
        if symlinks is not None and entry.kind == "symlink":
            raise ArchiveError(f"{path}: a symlink the tree's symlink record does not list")
        entries.append(entry)
        if entry.kind == "dir":
            children = sorted(path.iterdir(), key=lambda child: child.name, reverse=True)
            stack.extend((child, posixpath.join(rel, child.name)) for child in children)
    if symlinks is not None and set(symlinks) - seen:
        raise ArchiveError(f"recorded symlinks missing from {src}: {', '.join(sorted(set(symlinks) - seen))}")
    return entries


def _recorded_symlink_target(rel: str, target: str) -> str:
    """Return a recorded symlink's target, provided it is relative and stays inside the tree."""
    if not target or posixpath.isabs(target):
        raise ArchiveError(f"recorded symlink {rel} -> {target!r}: target must be a relative path inside the tree")
    if _escapes(posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))):
        raise ArchiveError(f"recorded symlink {rel} -> {target!r}: target escapes the tree being archived")
    return target


def _classify(path: Path, rel: str, top: str, src_real: str) -> _Entry:
    """Describe the file at `path` (relative name `rel` inside src) as an `_Entry`.

    Absolute symlinks are how Bazel sandboxes stage input files: they are followed to the real entry.
    """
    name = posixpath.join(top, rel) if rel else top
    real = unstaged(path)
    mode = real.lstat().st_mode
    if stat.S_ISDIR(mode):
        return _Entry(name, real, "dir")
    if stat.S_ISREG(mode):
        return _Entry(name, real, "file")
    if stat.S_ISLNK(mode):
        return _Entry(name, real, "symlink", _symlink_target(real, rel, _tree_root(real, rel, src_real)))
    raise ArchiveError(f"{path}: unsupported file type {stat.filemode(mode)[0]!r} (only files, dirs, symlinks)")


def _tree_root(real: Path, rel: str, src_real: str) -> str:
    """The real root of the tree `real` (a staged input's original, `rel` inside it) belongs to."""
    text = str(real)
    if rel and text.endswith("/" + rel):
        return os.path.realpath(text[: -len(rel) - 1])
    return src_real


def _symlink_target(link: Path, rel: str, src_real: str) -> str:
    """Return the target of `link`, provided it is relative and stays inside the source tree."""
    target = os.readlink(link)
    if not target or posixpath.isabs(target):
        raise ArchiveError(f"symlink {link} -> {target!r}: target must be a relative path inside the tree")
    lexical = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    if _escapes(lexical) or not _is_within(os.path.realpath(link), src_real):
        raise ArchiveError(f"symlink {link} -> {target!r}: target escapes the tree being archived")
    return target


# --------------------------------------------------------------------------------------------------
# Writing


def write_archive(
    src: Path,
    dest: Path,
    *,
    top: str,
    fmt: str,
    level: int | None = None,
    symlinks: Mapping[str, str] | None = None,
) -> None:
    """Pack directory `src` into `dest` with every member under `top/`, deterministically and atomically.

    `symlinks`: the tree's symlinks as its producer recorded them (see `_scan`); None trusts the tree as staged.
    """
    _check_top(top)
    _check_format(fmt)
    level = _resolve_level(fmt, level)
    if not src.is_dir():
        raise ArchiveError(f"{src}: not a directory")
    entries = _scan(src, top, symlinks)
    partial = dest.with_name(dest.name + ".partial")
    created = False
    try:
        with partial.open("wb") as fh:
            created = True
            _WRITERS[fmt](fh, entries, level)
        partial.replace(dest)
    except BaseException:
        if created:
            partial.unlink(missing_ok=True)
        raise


def _tar_info(entry: _Entry) -> tarfile.TarInfo:
    """Return a normalized tar header for a directory or symlink entry (files get theirs in `_add_tar`)."""
    info = tarfile.TarInfo(entry.name)
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, _DIR_MODE
    elif entry.kind == "symlink":
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, _SYMLINK_MODE, entry.target
    else:
        info.type, info.mode = tarfile.REGTYPE, _FILE_MODE
    return info


def _add_tar(tf: tarfile.TarFile, entry: _Entry) -> None:
    """Append one entry to `tf`, streaming file content."""
    info = _tar_info(entry)
    if entry.kind != "file":
        tf.addfile(info)
        return
    with entry.path.open("rb") as fh:
        info.mode = _content_mode(fh.read(4))
        fh.seek(0)
        info.size = os.fstat(fh.fileno()).st_size
        tf.addfile(info, fh)


def _write_tar(fileobj: IO[bytes], entries: list[_Entry]) -> None:
    """Write `entries` as an uncompressed PAX tar stream to `fileobj`."""
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8") as tf:
        for entry in entries:
            _add_tar(tf, entry)


def _write_tar_zst(fh: BinaryIO, entries: list[_Entry], level: int) -> None:
    """Write a zstd-compressed tar (single-threaded, streaming)."""
    compressor = zstandard.ZstdCompressor(level=level, threads=0)
    with compressor.stream_writer(fh, closefd=False) as zw:
        _write_tar(cast(IO[bytes], zw), entries)


def _write_tar_gz(fh: BinaryIO, entries: list[_Entry], level: int) -> None:
    """Write a gzip-compressed tar with no file name and a zero mtime in the gzip header."""
    with gzip.GzipFile(filename="", mode="wb", fileobj=fh, compresslevel=level, mtime=0) as gz:
        _write_tar(gz, entries)


def _write_tar_xz(fh: BinaryIO, entries: list[_Entry], level: int) -> None:
    """Write an xz-compressed tar (CRC64 check, single-threaded)."""
    with lzma.LZMAFile(fh, "wb", format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=level) as xz:
        _write_tar(xz, entries)


def _zip_info(entry: _Entry, level: int) -> zipfile.ZipInfo:
    """Return a normalized zip header for an entry; file modes are filled in by `_add_zip`."""
    info = zipfile.ZipInfo(entry.name + "/" if entry.kind == "dir" else entry.name, date_time=_ZIP_DATE_TIME)
    info.create_system = 3
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = level
    if entry.kind == "dir":
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = ((stat.S_IFDIR | _DIR_MODE) << 16) | 0x10  # 0x10: MS-DOS directory flag
        info.CRC = info.compress_size = info.file_size = 0
    elif entry.kind == "symlink":
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = (stat.S_IFLNK | _SYMLINK_MODE) << 16
    return info


def _add_zip(zf: zipfile.ZipFile, entry: _Entry, level: int) -> None:
    """Append one entry to `zf`, streaming file content."""
    info = _zip_info(entry, level)
    if entry.kind == "dir":
        zf.mkdir(info)
    elif entry.kind == "symlink":
        zf.writestr(info, entry.target.encode())
    else:
        with entry.path.open("rb") as fh:
            info.external_attr = (stat.S_IFREG | _content_mode(fh.read(4))) << 16
            fh.seek(0)
            info.file_size = os.fstat(fh.fileno()).st_size  # lets zipfile decide on zip64 up front
            with zf.open(info, "w") as out:
                shutil.copyfileobj(fh, out, _COPY_CHUNK)


def _write_zip(fh: BinaryIO, entries: list[_Entry], level: int) -> None:
    """Write a deflated zip archive."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for entry in entries:
            _add_zip(zf, entry, level)


_WRITERS = {
    "tar.zst": _write_tar_zst,
    "tar.gz": _write_tar_gz,
    "tar.xz": _write_tar_xz,
    "zip": _write_zip,
}


# --------------------------------------------------------------------------------------------------
# Extracting


def extract_archive(archive: Path, dest_dir: Path, *, top: str) -> Path:
    """Safely unpack `archive` (whose members all live under `top/`) into `dest_dir`; return `dest_dir / top`."""
    _check_top(top)
    fmt = archive_format(archive)
    if not dest_dir.is_dir():
        raise ArchiveError(f"{dest_dir}: extraction directory does not exist")
    final = dest_dir / top
    if os.path.lexists(final):
        raise ArchiveError(f"{final}: already exists; remove it before extracting {archive}")
    staging = Path(tempfile.mkdtemp(prefix=f".{top}.partial-", dir=dest_dir))
    try:
        extractor = _Extractor(archive, staging, top)
        try:
            if fmt == "zip":
                _extract_zip(archive, extractor)
            else:
                _extract_tar(archive, fmt, extractor)
        except _CORRUPT_ERRORS as exc:
            raise ArchiveError(f"{archive}: corrupt or unreadable archive: {exc}") from exc
        extractor.finish()
        staging.rename(final)
    except BaseException:
        _remove_tree(staging)
        raise
    return final


def _remove_tree(path: Path) -> None:
    """Remove `path` recursively, even when extracted directory modes deny writing."""
    if not path.exists():
        return
    for root, _dirs, _files in os.walk(path):
        Path(root).chmod(0o700)
    shutil.rmtree(path)


@contextlib.contextmanager
def _decompressed(archive: Path, fmt: str) -> Iterator[IO[bytes]]:
    """Open `archive` as a stream of decompressed tar bytes."""
    with archive.open("rb") as fh:
        if fmt == "tar.zst":
            with zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True, closefd=False) as reader:
                yield cast(IO[bytes], reader)
        elif fmt == "tar.gz":
            with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                yield gz
        else:
            with lzma.LZMAFile(fh, "rb") as xz:
                yield xz


def _extract_tar(archive: Path, fmt: str, ex: _Extractor) -> None:
    """Feed every member of a compressed tar archive to `ex`, streaming."""
    with _decompressed(archive, fmt) as stream, tarfile.open(fileobj=stream, mode="r|", encoding="utf-8") as tf:
        for member in tf:
            if member.isdir():
                ex.add_dir(member.name, member.mode)
            elif member.issym():
                ex.add_symlink(member.name, member.linkname)
            elif member.islnk():
                ex.add_hardlink(member.name, member.linkname)
            elif member.isreg():
                content = tf.extractfile(member)
                if content is None:
                    raise ex.error(member.name, "regular member without content")
                ex.add_file(member.name, member.mode, content)
            else:
                raise ex.error(member.name, f"unsupported member type {member.type!r} (device, fifo, ...)")


def _extract_zip(archive: Path, ex: _Extractor) -> None:
    """Feed every entry of a zip archive to `ex`."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            st_mode = info.external_attr >> 16 if info.create_system == 3 else 0
            kind, perm = stat.S_IFMT(st_mode), stat.S_IMODE(st_mode)
            if info.is_dir() or kind == stat.S_IFDIR:
                ex.add_dir(info.filename, perm or _DIR_MODE)
            elif kind == stat.S_IFLNK:
                if info.file_size > _MAX_ZIP_SYMLINK:
                    raise ex.error(info.filename, "symlink target too long")
                ex.add_symlink(info.filename, zf.read(info).decode("utf-8"))
            elif kind in (0, stat.S_IFREG):
                with zf.open(info) as content:
                    ex.add_file(info.filename, perm or _FILE_MODE, content)
            else:
                raise ex.error(info.filename, f"unsupported entry type {stat.filemode(st_mode)[0]!r}")


class _Extractor:
    """Materializes validated members inside a fresh staging directory that stands for `top`."""

    def __init__(self, archive: Path, staging: Path, top: str) -> None:
        """Prepare to extract `archive` into `staging` (an empty directory standing for `top`)."""
        self.archive = archive
        self.staging = staging
        self.top = top
        self.dir_modes: dict[Path, int] = {staging: _DIR_MODE}
        self.symlinks: list[tuple[str, Path]] = []

    def error(self, name: str, reason: str) -> ArchiveError:
        """Return an error naming the archive and the offending member."""
        return ArchiveError(f"{self.archive}: member {name!r}: {reason}")

    def _parts(self, name: str) -> tuple[str, ...]:
        """Validate a member name and return its components below `top`."""
        if name.startswith("/"):
            raise self.error(name, "absolute path")
        parts = (name[:-1] if name.endswith("/") else name).split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise self.error(name, "empty, '.' or '..' path component")
        if parts[0] != self.top:
            raise self.error(name, f"outside the top-level directory {self.top!r}")
        return tuple(parts[1:])

    def _prepare(self, name: str) -> tuple[tuple[str, ...], Path]:
        """Validate `name`, create its missing parent directories, and refuse to write through symlinks."""
        parts = self._parts(name)
        path = self.staging
        for part in parts[:-1]:
            path = path / part
            if not os.path.lexists(path):
                path.mkdir()
                self.dir_modes[path] = _DIR_MODE
            elif path.is_symlink():
                raise self.error(name, "would be written through a symlink")
            elif not path.is_dir():
                raise self.error(name, "parent path is not a directory")
        return parts, self.staging.joinpath(*parts)

    def _prepare_leaf(self, name: str) -> Path:
        """Like `_prepare` for a non-directory member, which must not exist yet and must not be `top`."""
        parts, path = self._prepare(name)
        if not parts:
            raise self.error(name, "the top-level member must be a directory")
        if os.path.lexists(path):
            raise self.error(name, "duplicate member")
        return path

    def _existing_file(self, name: str, linkname: str) -> Path:
        """Return the regular file that hard link member `name` points to, reached without symlinks."""
        try:
            parts = self._parts(linkname)
        except ArchiveError as exc:
            raise self.error(name, f"hard link target {linkname!r} is not inside {self.top!r}") from exc
        path = self.staging
        for part in parts:
            path = path / part
            if path.is_symlink() or not path.exists():
                raise self.error(name, f"hard link target {linkname!r} is not a file extracted earlier")
        if not path.is_file():
            raise self.error(name, f"hard link target {linkname!r} is not a regular file")
        return path

    def add_dir(self, name: str, mode: int) -> None:
        """Create a directory; its mode is applied in `finish` so that it stays writable meanwhile."""
        _parts, path = self._prepare(name)
        if path.is_symlink() or (os.path.lexists(path) and not path.is_dir()):
            raise self.error(name, "duplicate member")
        if not path.exists():
            path.mkdir()
        self.dir_modes[path] = stat.S_IMODE(mode) & 0o777

    def add_file(self, name: str, mode: int, content: IO[bytes]) -> None:
        """Create a regular file with `content`, never following a symlink."""
        path = self._prepare_leaf(name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(path, flags, 0o600), "wb") as out:
            shutil.copyfileobj(content, out, _COPY_CHUNK)
            os.fchmod(out.fileno(), stat.S_IMODE(mode) & 0o777)

    def add_symlink(self, name: str, target: str) -> None:
        """Create a symlink whose relative target stays inside `top`."""
        parts = self._parts(name)
        if not target or posixpath.isabs(target) or "\0" in target:
            raise self.error(name, f"symlink target {target!r} must be a relative path")
        if _escapes(posixpath.normpath(posixpath.join(*parts[:-1], target) if parts[:-1] else target)):
            raise self.error(name, f"symlink target {target!r} escapes {self.top!r}")
        path = self._prepare_leaf(name)
        path.symlink_to(target)
        self.symlinks.append((name, path))

    def add_hardlink(self, name: str, linkname: str) -> None:
        """Create a hard link to a regular file extracted earlier from this archive."""
        source = self._existing_file(name, linkname)
        path = self._prepare_leaf(name)
        os.link(source, path, follow_symlinks=False)

    def finish(self) -> None:
        """Check that every symlink really resolves inside `top`, then apply directory modes deepest first."""
        root = os.path.realpath(self.staging)
        for name, path in self.symlinks:
            if not _is_within(os.path.realpath(path), root):
                raise self.error(name, f"symlink target {str(path.readlink())!r} resolves outside {self.top!r}")
        for path in sorted(self.dir_modes, key=lambda p: len(p.parts), reverse=True):
            path.chmod(self.dir_modes[path])
