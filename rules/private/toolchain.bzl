"""The toolchain that supplies the helper tool and the interpreter to run it with."""

load("//rules:providers.bzl", "StackToolEnvironmentInfo", "StackToolInfo")
load(":stacktool.bzl", "ACTION_ENV", "INTERPRETER_FLAGS")

# The exec platform's own tar, by the exec platform's OS: it unpacks the runtime archive before any Python can run.
# An absolute path, because a remote worker resolves a bare name against the input root, not PATH.
_TAR = {"linux": "/bin/tar", "macos": "/usr/bin/tar", "windows": "C:/Windows/System32/tar.exe"}

# Below python/ of a python-build-standalone `install_only` archive: what unpacking extracts (the interpreter and
# lib/ on Linux and macOS, everything on Windows), minus what the tool never needs: the paths of _LEFT_OUT, and
# directories named in _LEFT_OUT_ANYWHERE at any depth.
_UNPACKED_MEMBERS = {"linux": ["bin/python{python}", "lib"], "macos": ["bin/python{python}", "lib"], "windows": []}
_LEFT_OUT = [
    "include",
    "share",
    "Scripts",
    "libs",
    "tcl",
    "lib/pkgconfig",
    "lib/tcl*",
    "lib/tk*",
    "lib/itcl*",
    "lib/thread*",
    "lib/python{python}/config-*",
]
_LEFT_OUT_ANYWHERE = ["site-packages", "test", "tests", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip", "pydoc_data", "distutils", "__pycache__"]

def _interpreter_path(os, python):
    """The interpreter below python/ of an `install_only` archive for the OS `os`, of Python `python` (X.Y)."""
    return "python.exe" if os == "windows" else "bin/python" + python

def _stacktool_environment_impl(ctx):
    python = ctx.attr.python
    interpreter = _interpreter_path(ctx.attr.os, python)

    # 1. Unpack the runtime (the exec platform's tar: no Python runs before this). tar -C names the directory that
    # holds the tree artifact, which Bazel and remote workers create; the archive's top directory is `python`.
    unpacked = ctx.actions.declare_directory(ctx.label.name + "/unpacked/python")
    args = ctx.actions.args()
    args.add("-xzf", ctx.file.runtime)
    args.add("-C", unpacked.dirname)
    args.add_all([p.format(python = python) for p in _LEFT_OUT], format_each = "--exclude=python/%s")
    args.add_all(_LEFT_OUT_ANYWHERE, format_each = "--exclude=%s")
    args.add_all([m.format(python = python) for m in _UNPACKED_MEMBERS[ctx.attr.os]], format_each = "python/%s")
    ctx.actions.run(
        executable = _TAR[ctx.attr.os],
        arguments = [args],
        inputs = [ctx.file.runtime],
        outputs = [unpacked],
        env = ACTION_ENV,
        mnemonic = "VenvstacksToolUnpack",
        progress_message = "Unpacking the helper tool's interpreter %{label}",
        toolchain = None,
    )
    unpacked_interpreter = unpacked.path + "/" + interpreter

    # 2. The interpreter the tool runs with: the unpacked runtime's smallest part that runs it, its standard library
    # zipped (one file for every action to stage instead of ~550 sources; bytecode for what the tool imports).
    runtime = ctx.actions.declare_directory(ctx.label.name + "/python")
    args = ctx.actions.args()
    args.add_all(INTERPRETER_FLAGS)
    args.add(ctx.file._tool_interpreter)
    args.add(unpacked.path)
    args.add(runtime.path)
    args.add(ctx.file._stdlib_bytecode)
    ctx.actions.run(
        executable = unpacked_interpreter,
        arguments = [args],
        inputs = [unpacked, ctx.file._tool_interpreter, ctx.file._bytecode_zip, ctx.file._stdlib_bytecode],
        outputs = [runtime],
        env = ACTION_ENV,
        mnemonic = "VenvstacksToolInterpreter",
        progress_message = "Writing the helper tool's interpreter %{label}",
        toolchain = None,
    )

    # 3. The pure-Python dependency wheels in one zip with their bytecode, written once instead of compiled in every
    # action (beside step 2, with the unpacked interpreter); a wheel with extension modules is unpacked in its
    # repository and goes on sys.path as a directory.
    pure = [f for f in ctx.files.sys_path if f.extension == "whl"]
    sys_path = [f for f in ctx.files.sys_path if f.extension != "whl"]
    files = [depset([runtime] + sys_path), depset([f for f in ctx.files.files if f.extension != "whl"])]
    if pure:
        zipped = ctx.actions.declare_file(ctx.label.name + "/dependencies.zip")
        args = ctx.actions.args()
        args.add_all(INTERPRETER_FLAGS)
        args.add(ctx.file._bytecode_zip)
        args.add(zipped)
        args.add_all("--wheel", pure)
        ctx.actions.run(
            executable = unpacked_interpreter,
            arguments = [args],
            inputs = [unpacked, ctx.file._bytecode_zip] + pure,
            outputs = [zipped],
            env = ACTION_ENV,
            mnemonic = "VenvstacksToolDependencies",
            progress_message = "Compiling the helper tool's dependencies %{label}",
            toolchain = None,
        )
        sys_path = [zipped] + sys_path
        files.append(depset([zipped]))
    return [StackToolEnvironmentInfo(runtime = runtime, interpreter = interpreter, sys_path = sys_path, files = depset(transitive = files))]

stacktool_environment = rule(
    implementation = _stacktool_environment_impl,
    doc = """What the helper tool runs with on one exec platform: python-build-standalone's interpreter and the tool's
dependency wheels, ready to import. Built by actions on that platform (its `tar` unpacks the runtime archive), so
a remote cache serves them to a clean checkout that never unpacks anything. The module extension generates these.""",
    attrs = {
        "files": attr.label_list(allow_files = True, cfg = "exec", doc = "Files of the dependency wheels' repositories."),
        "os": attr.string(mandatory = True, values = ["linux", "macos", "windows"], doc = "The exec platform's OS (@platforms' name): the runtime archive's layout and where its tar is."),
        "python": attr.string(mandatory = True, doc = "The runtime's Python version, X.Y."),
        "runtime": attr.label(allow_single_file = [".tar.gz"], mandatory = True, doc = "The exec platform's python-build-standalone `install_only` archive."),
        "sys_path": attr.label_list(allow_files = True, cfg = "exec", doc = "Per dependency: the pure wheel itself, or a marker file at the root of the unpacked wheel."),
        "_bytecode_zip": attr.label(allow_single_file = True, default = "//python:bytecode_zip.py"),
        "_stdlib_bytecode": attr.label(allow_single_file = True, default = "//rules/private:tool_stdlib_bytecode.txt"),
        "_tool_interpreter": attr.label(allow_single_file = True, default = "//python:tool_interpreter.py"),
    },
    provides = [StackToolEnvironmentInfo],
)

def _stacktool_toolchain_impl(ctx):
    environment = ctx.attr.environment[StackToolEnvironmentInfo]
    info = StackToolInfo(
        runtime = environment.runtime,
        interpreter = environment.interpreter,
        entry = ctx.file.entry,
        sys_path = environment.sys_path,
        files = depset([ctx.file.entry], transitive = [depset(ctx.files.sources), environment.files]),
    )
    return [platform_common.ToolchainInfo(stacktool = info)]

stacktool_toolchain = rule(
    implementation = _stacktool_toolchain_impl,
    doc = "Declares the helper tool for one exec platform. The module extension generates these; users rarely need to.",
    attrs = {
        "entry": attr.label(allow_single_file = True, cfg = "exec", default = "//python:run_stacktool.py", doc = "The tool's entry script."),
        "environment": attr.label(cfg = "exec", mandatory = True, providers = [StackToolEnvironmentInfo], doc = "What the tool runs with: a `stacktool_environment` target."),
        "sources": attr.label_list(allow_files = True, cfg = "exec", default = ["//python:stacktool"], doc = "The tool's sources."),
    },
    provides = [platform_common.ToolchainInfo],
)

def _uv_toolchain_impl(ctx):
    # The uv binary among the uv wheel's scripts (or the one file standing for a wheel that could not be fetched).
    uv = [f for f in ctx.files.uv if f.basename in ("uv", "uv.exe")] or ctx.files.uv
    if len(uv) != 1:
        fail("{}: `uv` must provide exactly one uv binary, got {}".format(ctx.label, [f.path for f in ctx.files.uv]))
    return [platform_common.ToolchainInfo(uv = uv[0])]

uv_toolchain = rule(
    implementation = _uv_toolchain_impl,
    doc = """Declares uv for one exec platform: `ToolchainInfo.uv` is the uv binary, which only `stack_lock` runs.
A toolchain of its own, apart from the helper tool's, so that builds neither fetch uv nor have it among every
action's inputs (a new uv release does not invalidate built layers). The module extension generates these.""",
    attrs = {
        "uv": attr.label(allow_files = True, cfg = "exec", mandatory = True, doc = "Files of the uv wheel's scripts; one is the uv binary."),
    },
    provides = [platform_common.ToolchainInfo],
)
