"""Repository rule: one wheel, downloaded once by sha256 and shared by every layer and platform that needs it."""

def download_checked(rctx, urls, output, sha256, what, fix):
    """Downloads with a sha256 (so the repository cache serves it); explains a mismatch instead of Bazel's trace.

    Args:
      rctx: the repository context.
      urls: where to download from.
      output: the file to write.
      sha256: the expected sha256.
      what: what is being downloaded, for messages.
      fix: what the user should do when the sha256 does not match.
    """
    result = rctx.download(url = urls, output = output, sha256 = sha256, allow_fail = True)
    if result.success:
        return

    # Without a sha256 Bazel downloads only over https; that is enough to tell a different file from no file.
    probe = rctx.download(url = urls, output = output + ".probe", allow_fail = True)
    if probe.success:
        rctx.delete(output + ".probe")
        fail("{} from {} has sha256 {}, but {} was expected. {}".format(what, urls[0], probe.sha256, sha256, fix))
    fail("cannot download {} with sha256 {} from {}: no network, no such file there, or (plain http) a different file. {}".format(
        what,
        sha256,
        " or ".join(urls),
        fix,
    ))

def _wheel_repo_impl(rctx):
    filename = rctx.attr.filename
    download_checked(
        rctx,
        rctx.attr.urls,
        filename,
        rctx.attr.sha256,
        "wheel " + filename,
        "The index serves a different file than when {} was locked: check why, then lock again (`bazel run {}`).".format(
            rctx.attr.locked_by,
            rctx.attr.locked_by,
        ),
    )
    lines = [
        'load("@rules_venvstacks//rules/private:installed_wheel.bzl", "installed_wheel")',
        "",
        'package(default_visibility = ["//visibility:public"])',
        "",
        "exports_files([{}])".format(repr(filename)),
    ]
    for python in rctx.attr.pythons:
        lines += [
            "",
            "installed_wheel(",
            '    name = "installed_{}",'.format(python.replace(".", "_")),
            "    wheel = {},".format(repr(filename)),
            "    python = {},".format(repr(python)),
            ")",
        ]
    rctx.file("BUILD.bazel", "\n".join(lines) + "\n")

wheel_repo = repository_rule(
    implementation = _wheel_repo_impl,
    doc = "A wheel of a lock index, with one `installed_<X_Y>` target (the installed tree) per Python version using it.",
    attrs = {
        "filename": attr.string(mandatory = True, doc = "The wheel's file name."),
        "locked_by": attr.string(mandatory = True, doc = "The lock target whose index lists the wheel (for messages)."),
        "pythons": attr.string_list(doc = "Python versions (X.Y) of the layers that install it."),
        "sha256": attr.string(mandatory = True, doc = "The wheel's sha256."),
        "urls": attr.string_list(mandatory = True, doc = "Where to download it."),
    },
)

def _tool_wheel_repo_impl(rctx):
    filename = rctx.attr.filename
    pure = filename.endswith("-none-any.whl")
    download_checked(
        rctx,
        rctx.attr.urls,
        filename if pure else "wheel.zip",  # extract() knows archives by their suffix
        rctx.attr.sha256,
        "wheel " + filename + " (a dependency of rules_venvstacks' helper tool)",
        "Update rules/private/tool_wheels.json with tools/lock_tool_deps.py.",
    )
    if pure:
        # Pure-Python wheels go on sys.path as they are (zipimport): one input file instead of a tree.
        entry = filename
    else:
        rctx.extract("wheel.zip")
        rctx.delete("wheel.zip")
        entry = "venvstacks_wheel_root"
        rctx.file(entry, "The directory of this file goes on the helper tool's sys.path.\n")
    rctx.file("BUILD.bazel", """\
package(default_visibility = ["//visibility:public"])

# What goes on the helper tool's sys.path: the wheel itself, or (for a wheel with extension modules) the
# directory of this marker file.
filegroup(
    name = "sys_path_entry",
    srcs = [{entry}],
)

filegroup(
    name = "files",
    srcs = glob(["**"], exclude = ["BUILD.bazel", "REPO.bazel", "WORKSPACE"]),
)

filegroup(
    name = "scripts",
    srcs = glob(["*.data/scripts/*"], allow_empty = True),
)
""".format(entry = repr(entry)))

tool_wheel_repo = repository_rule(
    implementation = _tool_wheel_repo_impl,
    doc = "A dependency of the helper tool for one exec platform: a pure wheel as is, others unpacked.",
    attrs = {
        "filename": attr.string(mandatory = True, doc = "The wheel's file name."),
        "sha256": attr.string(mandatory = True, doc = "The wheel's sha256."),
        "urls": attr.string_list(mandatory = True, doc = "Where to download it."),
    },
)
