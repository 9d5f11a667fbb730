"""Repository rule: a python-build-standalone `install_only` archive for one Python version and platform.

Sources, in order: a local archive in the directory named by VENVSTACKS_LOCAL_RUNTIMES (air-gapped machines;
file name `cpython-<X.Y>.<Z>[+<tag>]-<triple>-install_only[_stripped].tar.gz`), else the PBS release on
VENVSTACKS_PBS_MIRROR (same file names as GitHub's release assets), else GitHub, checked against the sha256 table.
"""

load("//platforms:platforms.bzl", "host_platform")
load(":repo_utils.bzl", "download_checked", "render")

LOCAL_RUNTIMES_ENV = "VENVSTACKS_LOCAL_RUNTIMES"
MIRROR_ENV = "VENVSTACKS_PBS_MIRROR"

def _archive_version(basename):
    """(major, minor, patch) of `cpython-X.Y.Z[+tag]-...` for ordering local archives by version."""
    version = basename[len("cpython-"):].split("-")[0].split("+")[0]
    return tuple([int(part) if part.isdigit() else 0 for part in version.split(".")])

def _local_archive(rctx):
    """The newest local archive of the Python asked for (the exact version, when one is asked for), or None."""
    directory = rctx.getenv(LOCAL_RUNTIMES_ENV, "")
    if not directory:
        return None
    path = rctx.path(directory)
    if not path.exists:
        fail("{}={} does not exist".format(LOCAL_RUNTIMES_ENV, directory))
    prefixes = ["cpython-{}+".format(rctx.attr.version), "cpython-{}-".format(rctx.attr.version)] if rctx.attr.exact else ["cpython-{}.".format(rctx.attr.python)]
    infix = "-{}-install_only".format(rctx.attr.triple)
    matches = sorted([
        entry
        for entry in path.readdir()
        if entry.basename.startswith(tuple(prefixes)) and infix in entry.basename and entry.basename.endswith(".tar.gz")
    ], key = lambda entry: (_archive_version(entry.basename), entry.basename))
    return matches[-1] if matches else None

def _fetch(rctx, archive):
    """Fetches the archive; returns (RuntimeSource dict, None) or (None, why it cannot be had)."""
    local = _local_archive(rctx)
    if local:
        # A file:// download copies the archive in and reports its sha256.
        result = rctx.download(url = "file://" + str(local), output = archive)
        version = local.basename[len("cpython-"):].split("-")[0].split("+")[0]
        return {"file": local.basename, "origin": "local", "python_version": version, "sha256": result.sha256}, None
    if not rctx.attr.sha256:
        return None, "no python-build-standalone archive of CPython {} is known for {} (the table knows {}): give the runtime layer a `runtime_archive`, put one in the directory named by {}, or use a version the table knows".format(
            rctx.attr.version or rctx.attr.python,
            rctx.attr.platform,
            ", ".join(rctx.attr.known_pythons),
            LOCAL_RUNTIMES_ENV,
        )
    filename = "cpython-{}+{}-{}-install_only.tar.gz".format(rctx.attr.version, rctx.attr.release, rctx.attr.triple)
    base = rctx.getenv(MIRROR_ENV, "") or rctx.attr.base_url
    url = "{}/{}/{}".format(base.rstrip("/"), rctx.attr.release, filename.replace("+", "%2B"))
    problem = download_checked(
        rctx,
        [url],
        archive,
        rctx.attr.sha256,
        "python-build-standalone archive " + filename,
        "Point {} at a mirror that serves the published file.".format(MIRROR_ENV),
    )
    if problem:
        return None, problem
    return {"file": filename, "origin": url, "python_version": rctx.attr.version, "sha256": rctx.attr.sha256}, None

def _runtime_repo_impl(rctx):
    archive = "runtime.tar.gz"

    # Labels resolved before any work: resolving one later could restart this function (and redo the download).
    zip_stdlib = [rctx.path(rctx.attr._bytecode_zip), rctx.path(rctx.attr._stdlib_bytecode)] if rctx.attr.tool else None
    source, problem = _fetch(rctx, archive)
    if problem:
        # One failing target; the others are aliases of it, so a build reports the problem once.
        rctx.file("BUILD.bazel", render.build_file({"@rules_venvstacks//rules/private:unavailable.bzl": ["unavailable"]}, [
            render.target("unavailable", "runtime.tar.gz", message = problem),
        ] + [render.target("alias", name, actual = ":runtime.tar.gz") for name in ("runtime.json", "interpreter", "files")]))
        return

    # A RuntimeSource (python/stacktool/contract.py).
    rctx.file("runtime.json", json.encode_indent(source) + "\n")
    if rctx.attr.tool:
        _tool_interpreter(rctx, archive, zip_stdlib)
    else:
        rctx.file("BUILD.bazel", render.build_file({}, ['exports_files(["runtime.tar.gz", "runtime.json"])']))

# Directories of the standard library the helper tool never imports, at any depth: left out of the zip, and not
# even unpacked when the host's tar does the unpacking.
_STDLIB_UNUSED = ["site-packages", "test", "tests", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip", "pydoc_data", "distutils", "__pycache__"]

def _unpack_for_this_host(rctx, archive):
    """Unpacks what the compact interpreter needs with the host's tar; False when that cannot be done here.

    Unpacking only that takes half the time of `rctx.extract`, which cannot leave members out.
    """
    tar = rctx.which("tar")
    if not tar or "windows" in rctx.os.name.lower():
        return False
    stdlib = "python/lib/python" + rctx.attr.python
    unused = ["python/include", "python/share", "python/lib/pkgconfig", "python/lib/tcl*", "python/lib/tk*", "python/lib/itcl*", "python/lib/thread*", stdlib + "/config-*"]
    unused += _STDLIB_UNUSED  # unanchored: a directory of that name at any depth, as the zip leaves them out
    result = rctx.execute([tar, "-xzf", archive] + ["--exclude=" + pattern for pattern in unused])
    if result.return_code != 0:
        rctx.delete("python")
        return False
    return True

def _tool_interpreter(rctx, archive, zip_stdlib):
    """Unpacks the runtime to run the helper tool; exposes the smallest set of files that runs it.

    `zip_stdlib`: the paths of python/bytecode_zip.py and of the list of standard library files to compile."""
    python = rctx.attr.python
    host = host_platform(rctx.os)
    native = bool(host) and host.name == rctx.attr.platform
    if not (native and _unpack_for_this_host(rctx, archive)):
        rctx.extract(archive)
    rctx.delete(archive)
    windows = rctx.path("python/python.exe").exists  # the PBS install_only layouts of Windows and of the others
    interpreter = "python/python.exe" if windows else "python/bin/python" + python
    zipped = "python/lib/python{}.zip".format(python.replace(".", ""))
    compact = False
    if native:
        # Zips the standard library (sources, and bytecode of the modules the tool imports) so that actions stage one
        # file instead of a thousand; python finds `lib/pythonXY.zip` on its default sys.path. Runs with the
        # runtime's own interpreter, which is why it is done only when that interpreter runs on this host.
        script, compiled = zip_stdlib
        command = [interpreter, "-S", "-E", "-s", "-B", script, zipped, "--tree", "python/lib/python" + python]
        command += ["--skip=" + name for name in _STDLIB_UNUSED] + ["--compile", compiled]
        compact = rctx.execute(command).return_code == 0
    if compact:
        # The interpreter, its shared libraries, the zipped stdlib, the landmark os.py (how python finds its
        # prefix) and the extension modules.
        comment = "What the helper tool's interpreter needs (standard library zipped); it runs with -S."
        files = render.expr("""[{}, {}, "python/lib/python{}/os.py"] + glob(
        ["python/lib/libpython*", "python/lib/python{}/lib-dynload/**"],
        allow_empty = True,
    )""".format(repr(interpreter), repr(zipped), python, python))
    else:
        comment = "What the helper tool's interpreter needs (the whole runtime: it cannot run on this host)."
        files = render.expr("""glob(
        ["python/**"],
        exclude = ["python/lib/python*/site-packages/**", "python/Lib/site-packages/**", "python/include/**"],
    )""")
    rctx.file("BUILD.bazel", render.build_file({}, [
        'exports_files(["runtime.json"])',
        render.target("filegroup", "interpreter", srcs = [interpreter]),
        "# " + comment + "\n" + render.target("filegroup", "files", srcs = files),
    ]))

runtime_repo = repository_rule(
    implementation = _runtime_repo_impl,
    doc = "A CPython runtime archive (python-build-standalone layout) for one Python version and platform.",
    attrs = {
        "base_url": attr.string(mandatory = True, doc = "Release download base URL (GitHub's, unless mirrored)."),
        "exact": attr.bool(doc = "`version` was asked for exactly: a local archive must be of that version."),
        "known_pythons": attr.string_list(doc = "The CPython versions the table knows (for messages)."),
        "platform": attr.string(mandatory = True, doc = "Target platform name, e.g. `linux_x86_64`."),
        "python": attr.string(mandatory = True, doc = "Python version X.Y."),
        "release": attr.string(doc = "PBS release (date) of the table entry."),
        "sha256": attr.string(doc = "sha256 of the table entry; empty when the table has none for this platform or version."),
        "tool": attr.bool(doc = "Unpack it here to run the helper tool (exec platform), instead of exposing the archive."),
        "triple": attr.string(mandatory = True, doc = "PBS target triple, e.g. `x86_64-unknown-linux-gnu`."),
        "version": attr.string(mandatory = True, doc = "Full CPython version: the table entry's, or the exact one a runtime layer asks for."),
        "_bytecode_zip": attr.label(default = "//python:bytecode_zip.py", doc = "Writes the tool interpreter's standard library zip."),
        "_stdlib_bytecode": attr.label(default = "//rules/private:tool_stdlib_bytecode.txt", doc = "The standard library files the tool imports: compiled in the zip."),
    },
    environ = [LOCAL_RUNTIMES_ENV, MIRROR_ENV],
)
