"""Repository rules: one wheel, downloaded once by sha256 and shared by every layer and platform that needs it."""

load(":repo_utils.bzl", "download_checked", "render")

def _unavailable(rctx, names, problem):
    """A BUILD file whose targets fail with `problem` when built (analysis and lock targets still work)."""
    rctx.file("BUILD.bazel", render.build_file(
        {"@rules_venvstacks//rules/private:unavailable.bzl": ["unavailable"]},
        [render.target("unavailable", name, message = problem) for name in names],
    ))

def _wheel_urls(rctx):
    """Where to fetch the wheel: its index's location here (a mirror or a local directory), then the lock's URL."""
    urls = ["{}/{}".format(rctx.attr.location.rstrip("/"), rctx.attr.filename)] if rctx.attr.location else []
    return urls + rctx.attr.urls

def _wheel_repo_impl(rctx):
    filename = rctx.attr.filename
    problem = download_checked(
        rctx,
        _wheel_urls(rctx),
        filename,
        rctx.attr.sha256,
        "wheel " + filename,
        "The index serves a different file than when {} was locked: check why, then lock again (`bazel run {}`).".format(
            rctx.attr.locked_by,
            rctx.attr.locked_by,
        ),
    )
    if problem:
        _unavailable(rctx, [filename] + ["installed_" + python.replace(".", "_") for python in rctx.attr.pythons], problem)
        return
    rctx.file("BUILD.bazel", render.build_file(
        {"@rules_venvstacks//rules/private:installed_wheel.bzl": ["installed_wheel"]},
        ["exports_files([{}])".format(repr(filename))] + [
            render.target("installed_wheel", "installed_" + python.replace(".", "_"), wheel = filename, python = python)
            for python in rctx.attr.pythons
        ],
    ))

wheel_repo = repository_rule(
    implementation = _wheel_repo_impl,
    doc = "A wheel of a lock index, with one `installed_<X_Y>` target (the installed tree) per Python version using it.",
    attrs = {
        "filename": attr.string(mandatory = True, doc = "The wheel's file name."),
        "location": attr.string(doc = "A flat directory URL serving the wheels of its index on this machine (a mirror, or the index's local directory), else empty."),
        "locked_by": attr.string(mandatory = True, doc = "The lock target whose index lists the wheel (for messages)."),
        "pythons": attr.string_list(doc = "Python versions (X.Y) of the layers that install it."),
        "sha256": attr.string(mandatory = True, doc = "The wheel's sha256."),
        "urls": attr.string_list(doc = "Where the lock says it is (empty for a wheel of a local directory)."),
    },
)

def _tool_wheel_repo_impl(rctx):
    filename = rctx.attr.filename
    pure = filename.endswith("-none-any.whl")
    problem = download_checked(
        rctx,
        rctx.attr.urls,
        filename if pure else "wheel.zip",  # extract() knows archives by their suffix
        rctx.attr.sha256,
        "wheel " + filename + " (a dependency of rules_venvstacks' helper tool)",
        "Update rules/private/tool_wheels.json with tools/lock_tool_deps.py.",
    )
    if problem:
        _unavailable(rctx, ["sys_path_entry", "files", "scripts"], problem)
        return
    if pure:
        # Pure-Python wheels go on sys.path as they are (zipimport): one input file instead of a tree.
        entry = filename
    else:
        rctx.extract("wheel.zip")
        rctx.delete("wheel.zip")
        entry = "venvstacks_wheel_root"
        rctx.file(entry, "The directory of this file goes on the helper tool's sys.path.\n")
    rctx.file("BUILD.bazel", render.build_file({}, [
        "# What goes on the helper tool's sys.path: the wheel itself, or (for a wheel with extension modules) the\n" +
        "# directory of this marker file.\n" + render.target("filegroup", "sys_path_entry", srcs = [entry]),
        render.target("filegroup", "files", srcs = render.expr('glob(["**"], exclude = ["BUILD.bazel", "REPO.bazel", "WORKSPACE"])')),
        render.target("filegroup", "scripts", srcs = render.expr('glob(["*.data/scripts/*"], allow_empty = True)')),
    ]))

tool_wheel_repo = repository_rule(
    implementation = _tool_wheel_repo_impl,
    doc = "A dependency of the helper tool for one exec platform: a pure wheel as is, others unpacked.",
    attrs = {
        "filename": attr.string(mandatory = True, doc = "The wheel's file name."),
        "sha256": attr.string(mandatory = True, doc = "The wheel's sha256."),
        "urls": attr.string_list(mandatory = True, doc = "Where to download it."),
    },
)
