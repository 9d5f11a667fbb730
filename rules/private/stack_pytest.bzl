"""Rule: pytest (or any module of the stack) on test sources, against the deployed stack of a test layer."""

load("//rules:providers.bzl", "LayerInfo")
load(":labels.bzl", "label_text")
load(":stacktool.bzl", "RUNFILES_PRELUDE", "TOOLCHAIN_TYPE", "runfiles_path", "stacktool", "stacktool_command")

def _shell_words(words):
    return " ".join(["'" + w.replace("'", "'\\''") + "'" for w in words])

def _stack_pytest_impl(ctx):
    layer = ctx.attr.layer[LayerInfo]
    metadata = " ".join(['--metadata "$runfiles/{}"'.format(runfiles_path(ctx, m)) for m in layer.deploy_metadata])
    sources = " ".join(['"$runfiles/{}"'.format(runfiles_path(ctx, f)) for f in ctx.files.srcs])
    package = runfiles_path(ctx, ctx.files.srcs[0]).rpartition("/")[0]
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(script, "\n".join([
        "#!/usr/bin/env bash",
        "# bazel test {}: deploys {} and the layers below it, then runs `python -m {}` on the test sources.".format(label_text(ctx.label), layer.install_target, ctx.attr.module),
        "set -euo pipefail",
        RUNFILES_PRELUDE,
        # A path with a space and a non-ASCII character, as users' home directories have.
        'deploy_dir="${TEST_TMPDIR:-$(mktemp -d)}/deployed stack ü"',
        'junit=(); if [[ -n "${{XML_OUTPUT_FILE:-}}" && {} == pytest ]]; then junit=("--junitxml=$XML_OUTPUT_FILE"); fi'.format(repr(ctx.attr.module)),
        'cd "$runfiles/{}"'.format(package),
        'exec {} run --label {} --deploy-dir "$deploy_dir" --module {} {} -- {} "${{junit[@]}}" {} "$@"'.format(
            stacktool_command(ctx),
            repr(label_text(ctx.label)),
            repr(ctx.attr.module),
            metadata,
            _shell_words(ctx.attr.module_args),
            sources,
        ),
        "",
    ]), is_executable = True)
    files = layer.deploy_metadata + [layer.archive] + [below.archive for below in layer.lower] + ctx.files.srcs + ctx.files.data
    runfiles = ctx.runfiles(files = files, transitive_files = stacktool(ctx).files)
    return [DefaultInfo(executable = script, runfiles = runfiles)]

stack_pytest_test = rule(
    implementation = _stack_pytest_impl,
    doc = """Runs `python -m <module>` (pytest by default) on `srcs` with the python of `layer`, a test layer over an
application, after deploying it with every layer below it, so the tests import exactly what ships. With pytest,
results reach Bazel as JUnit XML. Use the `stack_pytest` macro.""",
    attrs = {
        "data": attr.label_list(allow_files = True, doc = "Files the tests read (conftest.py, fixtures...)."),
        "layer": attr.label(mandatory = True, providers = [LayerInfo], doc = "The test layer (its lower layers: the application and what it sits on)."),
        "module": attr.string(default = "pytest", doc = "The module to run with `python -m`."),
        "module_args": attr.string_list(default = ["-p", "no:cacheprovider"], doc = "Arguments before the test sources (pytest: no cache in the read-only runfiles)."),
        "srcs": attr.label_list(allow_files = [".py"], mandatory = True, doc = "The test sources."),
    },
    test = True,
    toolchains = [TOOLCHAIN_TYPE],
)
