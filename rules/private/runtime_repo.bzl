"""Repository rule: a python-build-standalone `install_only` archive for one Python version and platform.

Sources, in order: a local archive in the directory named by VENVSTACKS_LOCAL_RUNTIMES (air-gapped machines;
file name `cpython-<X.Y>.<Z>[+<tag>]-<triple>-install_only[_stripped].tar.gz`), else the PBS release on
VENVSTACKS_PBS_MIRROR (same file names as GitHub's release assets), else GitHub, checked against the sha256 table.
"""

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
    source, problem = _fetch(rctx, "runtime.tar.gz")
    if problem:
        # One failing target (the metadata file is an alias of it), so a build reports the problem once.
        rctx.file("BUILD.bazel", render.build_file({"@rules_venvstacks//rules/private:unavailable.bzl": ["unavailable"]}, [
            render.target("unavailable", "runtime.tar.gz", message = problem),
            render.target("alias", "runtime.json", actual = ":runtime.tar.gz"),
        ]))
        return

    # A RuntimeSource (python/stacktool/contract.py).
    rctx.file("runtime.json", json.encode_indent(source) + "\n")
    rctx.file("BUILD.bazel", render.build_file({}, ['exports_files(["runtime.tar.gz", "runtime.json"])']))

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
        "triple": attr.string(mandatory = True, doc = "PBS target triple, e.g. `x86_64-unknown-linux-gnu`."),
        "version": attr.string(mandatory = True, doc = "Full CPython version: the table entry's, or the exact one a runtime layer asks for."),
    },
    environ = [LOCAL_RUNTIMES_ENV, MIRROR_ENV],
)
