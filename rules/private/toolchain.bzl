"""The toolchain that supplies the helper tool and the interpreter to run it with."""

load("//rules:providers.bzl", "StackToolInfo")

def _stacktool_toolchain_impl(ctx):
    # The uv binary among the uv wheel's scripts (or the one file standing for a wheel that could not be fetched).
    uv = [f for f in ctx.files.uv if f.basename in ("uv", "uv.exe")] or ctx.files.uv
    if len(uv) != 1:
        fail("{}: `uv` must provide exactly one uv binary, got {}".format(ctx.label, [f.path for f in ctx.files.uv]))
    info = StackToolInfo(
        interpreter = ctx.file.interpreter,
        entry = ctx.file.entry,
        sys_path = ctx.files.sys_path,
        uv = uv[0],
        files = depset(
            [ctx.file.interpreter, ctx.file.entry, uv[0]],
            transitive = [
                depset(ctx.files.interpreter_files),
                depset(ctx.files.sources),
                depset(ctx.files.dependencies),
            ],
        ),
    )
    return [platform_common.ToolchainInfo(stacktool = info)]

stacktool_toolchain = rule(
    implementation = _stacktool_toolchain_impl,
    doc = "Declares the helper tool for one exec platform. The module extension generates these; users rarely need to.",
    attrs = {
        "dependencies": attr.label_list(allow_files = True, cfg = "exec", doc = "Files of the unpacked dependency wheels."),
        "sys_path": attr.label_list(allow_files = True, cfg = "exec", doc = "Per dependency: the pure wheel itself, or a marker file at the root of the unpacked wheel."),
        "entry": attr.label(allow_single_file = True, cfg = "exec", default = "//python:run_stacktool.py", doc = "The tool's entry script."),
        "interpreter": attr.label(allow_single_file = True, cfg = "exec", mandatory = True, doc = "The Python interpreter."),
        "interpreter_files": attr.label_list(allow_files = True, cfg = "exec", doc = "Everything the interpreter needs (its runtime tree)."),
        "sources": attr.label_list(allow_files = True, cfg = "exec", default = ["//python:stacktool"], doc = "The tool's sources."),
        "uv": attr.label(allow_files = True, cfg = "exec", mandatory = True, doc = "Files of the uv wheel's scripts; one is the uv binary."),
    },
    provides = [platform_common.ToolchainInfo],
)
