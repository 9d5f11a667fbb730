"""Rules of docs/BUILD.bazel: render docs/rules.md from starlark_doc_extract output, and copy it into the source tree."""

# buildifier: disable=bzl-visibility (docs/ is this module's own package: it runs the tool like its rules do)
load("//rules/private:stacktool.bzl", "ACTION_ENV", "INTERPRETER_FLAGS", "RUNFILES_PRELUDE", "TOOLCHAIN_TYPE", "interpreter_path", "runfiles_path", "stacktool")

def _rule_docs_impl(ctx):
    output = ctx.actions.declare_file(ctx.label.name + ".md")
    tool = stacktool(ctx)
    args = ctx.actions.args()
    args.add_all(INTERPRETER_FLAGS)
    args.add(ctx.file.renderer)
    args.add("--output", output)
    args.add("--platforms", ctx.file.platforms_module)
    args.add("--target-platforms", ctx.file.target_platforms)
    args.add_all(ctx.files.modules)
    ctx.actions.run(
        executable = interpreter_path(tool),
        arguments = [args],
        inputs = depset(
            [ctx.file.renderer, ctx.file.platforms_module, ctx.file.target_platforms] + ctx.files.modules,
            transitive = [tool.files],
        ),
        outputs = [output],
        env = ACTION_ENV,
        mnemonic = "RuleDocs",
        progress_message = "Rendering %{output} from the Starlark docs",
        toolchain = TOOLCHAIN_TYPE,
    )
    return [DefaultInfo(files = depset([output]))]

rule_docs = rule(
    implementation = _rule_docs_impl,
    doc = "Renders the Markdown reference (`<name>.md`) from ModuleInfo textprotos, with the helper tool's interpreter.",
    attrs = {
        "modules": attr.label_list(
            allow_files = [".textproto"],
            mandatory = True,
            doc = "`starlark_doc_extract` textprotos (`<target>.textproto`) of the documented modules, in section order.",
        ),
        "platforms_module": attr.label(
            allow_single_file = [".textproto"],
            mandatory = True,
            doc = "The textproto of the module that defines the target platforms (its docstring introduces them).",
        ),
        "renderer": attr.label(
            allow_single_file = [".py"],
            default = ":render_rule_docs.py",
            doc = "The renderer script (stdlib only).",
        ),
        "target_platforms": attr.label(
            allow_single_file = [".json"],
            mandatory = True,
            doc = "The platform table: JSON, name -> struct(name, os, cpu, constraints) (`//platforms:table`).",
        ),
    },
    toolchains = [TOOLCHAIN_TYPE],
)

def _update_source_impl(ctx):
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    source = ctx.file.source.short_path
    ctx.actions.write(script, "\n".join([
        "#!/usr/bin/env bash",
        "# bazel run {}: writes {} into the source tree.".format(ctx.label, source),
        "set -euo pipefail",
        RUNFILES_PRELUDE,
        'if [[ -z "${BUILD_WORKSPACE_DIRECTORY:-}" ]]; then',
        '  echo "{}: run it with bazel run (it writes into the source tree)" >&2'.format(ctx.label),
        "  exit 2",
        "fi",
        'generated="$runfiles/{}"'.format(runfiles_path(ctx, ctx.file.generated)),
        'target="$BUILD_WORKSPACE_DIRECTORY/{}"'.format(source),
        'if cmp -s "$generated" "$target"; then',
        '  echo "{} is up to date"'.format(source),
        "else",
        '  cat "$generated" > "$target"',
        '  echo "wrote {}"'.format(source),
        "fi",
        "",
    ]), is_executable = True)
    return [DefaultInfo(executable = script, runfiles = ctx.runfiles([ctx.file.generated]))]

update_source = rule(
    implementation = _update_source_impl,
    doc = "`bazel run` it to overwrite a checked-in file with its generated version.",
    attrs = {
        "generated": attr.label(allow_single_file = True, mandatory = True, doc = "The generated file."),
        "source": attr.label(allow_single_file = True, mandatory = True, doc = "The checked-in file to overwrite."),
    },
    executable = True,
)
