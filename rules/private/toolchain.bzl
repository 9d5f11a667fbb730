"""The toolchain that supplies the helper tool and the interpreter to run it with."""

load("//rules:providers.bzl", "StackToolEnvironmentInfo", "StackToolInfo")
load(":stacktool.bzl", "ACTION_ENV", "INTERPRETER_FLAGS")

# The exec platform's shell and tar, by its OS: one action unpacks the runtime archive and runs the interpreter it
# holds, since no Python exists before it. Absolute paths: a remote worker resolves a bare program name against the
# input root, not PATH.
_SHELL = {"linux": "/bin/sh", "macos": "/bin/sh", "windows": "C:/Windows/System32/cmd.exe"}
_TAR = {"linux": "/bin/tar", "macos": "/usr/bin/tar", "windows": "C:/Windows/System32/tar.exe"}

# Below python/ of a python-build-standalone `install_only` archive: what unpacking extracts (the interpreter and
# lib/ on Linux and macOS; everything on Windows), minus what the tool never needs: the paths of _LEFT_OUT, and
# directories named in _LEFT_OUT_ANYWHERE at any depth.
_UNPACKED_MEMBERS_UNIX = ["bin/python{python}", "lib"]
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

def _sh_quote(text):
    return "'" + text.replace("'", "'\\''") + "'"

def _unpack_then_run(os, python, archive, unpacked, interpreter):
    """A command that unpacks a runtime archive, runs its interpreter and deletes what it unpacked.

    The command unpacks `archive` into the directory `unpacked` (an exec path), runs `interpreter` (the exec path
    of the unpacked interpreter) with the arguments placed between the two lists it returns, and deletes `unpacked`.

    Returns:
      (executable, arguments before the interpreter's, arguments after them).
    """
    windows = os == "windows"
    directory = unpacked.replace("/", "\\") if windows else unpacked  # cmd.exe's built-ins want backslashes
    tar = [_TAR[os], "-xzf", archive.path, "-C", directory]
    tar += ["--exclude=python/" + p.format(python = python) for p in _LEFT_OUT]
    tar += ["--exclude=" + name for name in _LEFT_OUT_ANYWHERE]
    tar += [] if windows else ["python/" + m.format(python = python) for m in _UNPACKED_MEMBERS_UNIX]
    if windows:
        # cmd.exe runs the rest of its command line, `&&` included.
        before = ["/d", "/c", "mkdir", directory, "&&"] + tar + ["&&", interpreter.replace("/", "\\")]
        return _SHELL[os], before, ["&&", "rmdir", "/s", "/q", directory]
    script = "mkdir -p {dir} && {tar} && {interpreter} \"$@\" && rm -rf {dir}".format(
        dir = _sh_quote(unpacked),
        tar = " ".join([_sh_quote(word) for word in tar]),
        interpreter = _sh_quote(interpreter),
    )
    return _SHELL[os], ["-c", script, "sh"], []

def _stacktool_environment_impl(ctx):
    # The interpreter the tool runs with: the part of the exec platform's runtime that runs it, its standard library
    # zipped (one file for every action to stage instead of ~550 sources; bytecode for what the tool imports).
    runtime = ctx.actions.declare_directory(ctx.label.name + "/python")
    interpreter = _interpreter_path(ctx.attr.os, ctx.attr.python)
    unpacked = runtime.dirname + "/unpacked"  # the archive's python/ goes below it
    outputs = [runtime]
    args = ctx.actions.args()
    args.add_all(INTERPRETER_FLAGS)
    args.add(ctx.file._script)
    args.add(unpacked + "/python")
    args.add(runtime.path)
    args.add(ctx.file._stdlib_bytecode)

    # The pure-Python dependency wheels in one zip with their bytecode, written once instead of compiled in every
    # action; a wheel with extension modules is unpacked in its repository and goes on sys.path as a directory.
    pure = [f for f in ctx.files.sys_path if f.extension == "whl"]
    sys_path = [f for f in ctx.files.sys_path if f.extension != "whl"]
    if pure:
        zipped = ctx.actions.declare_file(ctx.label.name + "/dependencies.zip")
        outputs.append(zipped)
        args.add("--dependencies", zipped)
        args.add_all(pure)
        sys_path = [zipped] + sys_path

    executable, before, after = _unpack_then_run(ctx.attr.os, ctx.attr.python, ctx.file.runtime, unpacked, unpacked + "/python/" + interpreter)
    ctx.actions.run(
        executable = executable,
        arguments = [ctx.actions.args().add_all(before), args, ctx.actions.args().add_all(after)],
        inputs = [ctx.file.runtime, ctx.file._script, ctx.file._stdlib_bytecode] + pure,
        outputs = outputs,
        env = ACTION_ENV,
        mnemonic = "VenvstacksToolEnvironment",
        progress_message = "Writing the helper tool's interpreter and dependencies %{label}",
        toolchain = None,
    )
    files = depset([runtime] + sys_path, transitive = [depset([f for f in ctx.files.files if f.extension != "whl"])])
    return [StackToolEnvironmentInfo(runtime = runtime, interpreter = interpreter, sys_path = sys_path, files = files)]

stacktool_environment = rule(
    implementation = _stacktool_environment_impl,
    doc = """What the helper tool runs with on one exec platform: python-build-standalone's interpreter and the tool's
dependency wheels, ready to import. Written by one action on that platform (its `tar` unpacks the runtime archive,
whose interpreter then runs python/tool_environment.py), so a remote cache serves them to a clean checkout, which
then unpacks nothing. The module extension generates these.""",
    attrs = {
        "files": attr.label_list(allow_files = True, cfg = "exec", doc = "Files of the dependency wheels' repositories."),
        "os": attr.string(mandatory = True, values = ["linux", "macos", "windows"], doc = "The exec platform's OS (@platforms' name): the runtime archive's layout and where its tar is."),
        "python": attr.string(mandatory = True, doc = "The runtime's Python version, X.Y."),
        # Any single file: a runtime that could not be fetched is an `unavailable` target, whose build says why.
        "runtime": attr.label(allow_single_file = True, mandatory = True, doc = "The exec platform's python-build-standalone `install_only` archive."),
        "sys_path": attr.label_list(allow_files = True, cfg = "exec", doc = "Per dependency: the pure wheel itself, or a marker file at the root of the unpacked wheel."),
        "_script": attr.label(allow_single_file = True, default = "//python:tool_environment.py"),
        "_stdlib_bytecode": attr.label(allow_single_file = True, default = "//rules/private:tool_stdlib_bytecode.txt"),
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
