"""The toolchain that supplies the helper tool and the interpreter to run it with."""

load("//rules:providers.bzl", "StackToolDependenciesInfo", "StackToolInfo")
load(":stacktool.bzl", "ACTION_ENV", "INTERPRETER_FLAGS")

def _stacktool_dependencies_impl(ctx):
    # The pure-Python wheels go into one zip with their bytecode, written once instead of compiled in every action;
    # a wheel with extension modules is unpacked in its repository and goes on sys.path as a directory.
    pure = [f for f in ctx.files.sys_path if f.extension == "whl"]
    unpacked = [f for f in ctx.files.sys_path if f.extension != "whl"]
    sys_path = unpacked
    files = [depset(unpacked), depset([f for f in ctx.files.files if f.extension != "whl"])]
    if pure:
        zipped = ctx.actions.declare_file(ctx.label.name + ".zip")
        args = ctx.actions.args()
        args.add_all(INTERPRETER_FLAGS)
        args.add(ctx.file._bytecode_zip)
        args.add(zipped)
        args.add_all("--wheel", pure)
        ctx.actions.run(
            executable = ctx.file.interpreter,
            arguments = [args],
            inputs = depset([ctx.file._bytecode_zip] + pure, transitive = [depset(ctx.files.interpreter_files)]),
            outputs = [zipped],
            env = ACTION_ENV,
            mnemonic = "VenvstacksToolDependencies",
            progress_message = "Compiling the helper tool's dependencies %{label}",
            toolchain = None,  # the interpreter comes from an attribute (this rule makes part of the toolchain)
        )
        sys_path = [zipped] + unpacked
        files.append(depset([zipped]))
    return [StackToolDependenciesInfo(sys_path = sys_path, files = depset(transitive = files))]

stacktool_dependencies = rule(
    implementation = _stacktool_dependencies_impl,
    doc = "The helper tool's dependency wheels for one exec platform, ready to import. The module extension generates these.",
    attrs = {
        "files": attr.label_list(allow_files = True, cfg = "exec", doc = "Files of the dependency wheels' repositories."),
        "interpreter": attr.label(allow_single_file = True, cfg = "exec", mandatory = True, doc = "The Python interpreter that compiles the pure-Python wheels."),
        "interpreter_files": attr.label_list(allow_files = True, cfg = "exec", doc = "Everything the interpreter needs."),
        "sys_path": attr.label_list(allow_files = True, cfg = "exec", doc = "Per dependency: the pure wheel itself, or a marker file at the root of the unpacked wheel."),
        "_bytecode_zip": attr.label(allow_single_file = True, default = "//python:bytecode_zip.py"),
    },
    provides = [StackToolDependenciesInfo],
)

def _stacktool_toolchain_impl(ctx):
    dependencies = ctx.attr.dependencies[StackToolDependenciesInfo]
    info = StackToolInfo(
        interpreter = ctx.file.interpreter,
        entry = ctx.file.entry,
        sys_path = dependencies.sys_path,
        files = depset(
            [ctx.file.interpreter, ctx.file.entry],
            transitive = [
                depset(ctx.files.interpreter_files),
                depset(ctx.files.sources),
                dependencies.files,
            ],
        ),
    )
    return [platform_common.ToolchainInfo(stacktool = info)]

stacktool_toolchain = rule(
    implementation = _stacktool_toolchain_impl,
    doc = "Declares the helper tool for one exec platform. The module extension generates these; users rarely need to.",
    attrs = {
        "dependencies": attr.label(cfg = "exec", mandatory = True, providers = [StackToolDependenciesInfo], doc = "The tool's dependencies: a `stacktool_dependencies` target."),
        "entry": attr.label(allow_single_file = True, cfg = "exec", default = "//python:run_stacktool.py", doc = "The tool's entry script."),
        "interpreter": attr.label(allow_single_file = True, cfg = "exec", mandatory = True, doc = "The Python interpreter."),
        "interpreter_files": attr.label_list(allow_files = True, cfg = "exec", doc = "Everything the interpreter needs (its runtime tree)."),
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
