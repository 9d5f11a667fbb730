"""Rule: `bazel run` it to lock every layer it lists (and the layers below them) with uv."""

load("//rules:providers.bzl", "LayerInfo")
load(":stacktool.bzl", "RUNFILES_PRELUDE", "TOOLCHAIN_TYPE", "runfiles_path", "stacktool", "stacktool_command")

INDEX_NAME = "venvstacks_lock.json"

def _stack_lock_impl(ctx):
    layers = []
    seen = {}
    for target in ctx.attr.layers:
        info = target[LayerInfo]
        for layer in reversed([info] + info.lower):  # lower layers first
            if layer.key not in seen:
                seen[layer.key] = True
                layers.append(layer.spec)
    spec = ctx.actions.declare_file(ctx.label.name + ".spec.json")
    ctx.actions.write(spec, json.encode_indent({"layers": layers, "lock": str(ctx.label).lstrip("@")}))
    tool = stacktool(ctx)
    script = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.write(script, "\n".join([
        "#!/usr/bin/env bash",
        "# bazel run {}: resolve the layers with uv and write the lock files into {}/.".format(ctx.label, ctx.label.package or "the workspace root"),
        "set -euo pipefail",
        RUNFILES_PRELUDE,
        'if [[ -z "${BUILD_WORKSPACE_DIRECTORY:-}" ]]; then echo "run this with: bazel run ' + str(ctx.label).lstrip("@") + '" >&2; exit 2; fi',
        'exec {tool} lock --spec "$runfiles/{spec}" --uv "$runfiles/{uv}" --index-name {index} --out-dir "$BUILD_WORKSPACE_DIRECTORY/{package}" -- "$@"'.format(
            tool = stacktool_command(ctx),
            spec = runfiles_path(ctx, spec),
            uv = runfiles_path(ctx, tool.uv),
            index = INDEX_NAME,
            package = ctx.label.package,
        ),
        "",
    ]), is_executable = True)
    return [DefaultInfo(executable = script, runfiles = ctx.runfiles(files = [spec], transitive_files = tool.files))]

stack_lock = rule(
    implementation = _stack_lock_impl,
    doc = """Locks layers: `bazel run` it to resolve each listed layer and every layer below it with uv, for each of
the layer's platforms, lower layers' versions as constraints. Writes `pylock.<env_name>.toml` per layer and
`venvstacks_lock.json` (the index MODULE.bazel registers with `venvstacks.lock_file`) into this package.
Arguments after `--` go to uv (e.g. `--upgrade`, `--index-url URL`). Files whose content is unchanged are not
rewritten; nothing is written when any layer fails to lock.""",
    attrs = {
        "layers": attr.label_list(mandatory = True, providers = [LayerInfo], doc = "Layers to lock; the layers below them are locked too."),
    },
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
)
