"""Rules: `stack_lock` (`bazel run` it to lock every layer it lists, and the layers below them, with uv) and
`stack_lock_test` (fails while the lock is stale)."""

load("@venvstacks_hub//:layers.bzl", "INDEXES")
load("//rules:providers.bzl", "LayerInfo")
load(":stacktool.bzl", "RUNFILES_PRELUDE", "TOOLCHAIN_TYPE", "runfiles_path", "stacktool", "stacktool_command")

UV_TOOLCHAIN_TYPE = Label("//rules:uv_toolchain_type")

INDEX_NAME = "venvstacks_lock.json"

def _locking_impl(_settings, _attr):
    return {str(Label("//platforms:locking")): True}

# Layers limited to some platforms are incompatible with the others; while locking they are all compatible.
_locking = transition(implementation = _locking_impl, inputs = [], outputs = [str(Label("//platforms:locking"))])

def _locked_layers(ctx):
    """Every layer the lock covers, lower layers first; disabled layers (`platforms = []`) left out."""
    layers = []
    seen = {}
    for target in ctx.attr.layers:
        info = target[LayerInfo]
        if info.disabled:
            continue
        for layer in reversed([info] + info.lower):  # C3 order reversed: every layer after the layers it sits on
            if layer.key not in seen:
                seen[layer.key] = True
                layers.append(layer)
    return layers

def _stack_lock_impl(ctx):
    spec = ctx.actions.declare_file(ctx.label.name + ".spec.json")
    ctx.actions.write(spec, json.encode_indent({
        "exclude_newer": ctx.attr.exclude_newer,
        "indexes": INDEXES,
        "layers": [layer.spec for layer in _locked_layers(ctx)],
        "lock": str(ctx.label).lstrip("@"),
    }))
    uv = ctx.toolchains[UV_TOOLCHAIN_TYPE].uv
    script = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.write(script, "\n".join([
        "#!/usr/bin/env bash",
        "# bazel run {}: resolve the layers with uv and write the lock files into {}/.".format(ctx.label, ctx.label.package or "the workspace root"),
        "set -euo pipefail",
        RUNFILES_PRELUDE,
        'if [[ -z "${BUILD_WORKSPACE_DIRECTORY:-}" ]]; then echo "run this with: bazel run ' + str(ctx.label).lstrip("@") + '" >&2; exit 2; fi',
        'exec {tool} lock --spec "$runfiles/{spec}" --uv "$runfiles/{uv}" --index-name {index} --workspace "$BUILD_WORKSPACE_DIRECTORY" --out-dir "$BUILD_WORKSPACE_DIRECTORY/{package}" -- "$@"'.format(
            tool = stacktool_command(ctx),
            spec = runfiles_path(ctx, spec),
            uv = runfiles_path(ctx, uv),
            index = INDEX_NAME,
            package = ctx.label.package,
        ),
        "",
    ]), is_executable = True)
    return [DefaultInfo(executable = script, runfiles = ctx.runfiles(files = [spec, uv], transitive_files = stacktool(ctx).files))]

_LAYERS = attr.label_list(
    mandatory = True,
    providers = [LayerInfo],
    cfg = _locking,
    doc = "Layers to lock; the layers below them are locked too.",
)

stack_lock = rule(
    implementation = _stack_lock_impl,
    doc = """Locks layers: `bazel run` it to resolve each listed layer and every layer below it with uv, for each of
the layer's platforms, lower layers' versions as constraints. Writes `pylock.<env_name>.toml` per layer and
`venvstacks_lock.json` (the index MODULE.bazel registers with `venvstacks.lock_file`) into this package.
Arguments after `--` go to uv (e.g. `--upgrade`). Files whose content is unchanged are not rewritten; nothing is
written when any layer fails to lock. Use the `stack_lock` macro (it adds the `<name>_test` target).""",
    attrs = {
        "exclude_newer": attr.string(doc = "Lock as if no release after this time existed (uv's `--exclude-newer`): `2025-06-30` or an RFC 3339 time."),
        "layers": _LAYERS,
        "_allowlist_function_transition": attr.label(default = "@bazel_tools//tools/allowlists/function_transition_allowlist"),
    },
    executable = True,
    toolchains = [TOOLCHAIN_TYPE, UV_TOOLCHAIN_TYPE],
)

def _stack_lock_test_impl(ctx):
    lock = str(ctx.attr.lock.label).lstrip("@")
    problems = [layer.lock_problem for layer in _locked_layers(ctx) if layer.lock_problem]
    if not ctx.attr.locked:
        problems.append("{} has not written its index yet".format(lock))
    elif ctx.attr.exclude_newer != ctx.attr.recorded_exclude_newer:
        problems.append("exclude_newer is {} but the index was written with {}".format(repr(ctx.attr.exclude_newer), repr(ctx.attr.recorded_exclude_newer)))
    locked = [f for layer in _locked_layers(ctx) if not layer.lock_problem for f in layer.locked_files]
    args = " ".join(["--problem {}".format(_shell_quote(p)) for p in problems] + [
        '--file "$runfiles/{}" {} {}'.format(runfiles_path(ctx, f.file), f.sha256, _shell_quote(f.path))
        for f in locked
    ])
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(script, "\n".join([
        "#!/usr/bin/env bash",
        "# bazel test {}: fails while the lock of {} is stale.".format(ctx.label, lock),
        "set -euo pipefail",
        RUNFILES_PRELUDE,
        "exec {} check-lock --lock {} {}".format(stacktool_command(ctx), _shell_quote(lock), args),
        "",
    ]), is_executable = True)
    runfiles = ctx.runfiles(files = [f.file for f in locked], transitive_files = stacktool(ctx).files)
    return [DefaultInfo(executable = script, runfiles = runfiles)]

def _shell_quote(text):
    return "'" + text.replace("'", "'\\''") + "'"

stack_lock_test = rule(
    implementation = _stack_lock_test_impl,
    doc = "Fails while the lock of a stack_lock target is stale (a layer's spec, pylock file or requirements files changed, or the lock's settings), naming the command that fixes it. The `stack_lock` macro declares it as `<name>_test`.",
    attrs = {
        "exclude_newer": attr.string(doc = "The stack_lock's `exclude_newer`."),
        "layers": _LAYERS,
        "lock": attr.label(mandatory = True, doc = "The stack_lock target."),
        "locked": attr.bool(doc = "Whether the lock index exists (the macro reads it from the hub)."),
        "recorded_exclude_newer": attr.string(doc = "The `exclude_newer` the index was written with."),
        "_allowlist_function_transition": attr.label(default = "@bazel_tools//tools/allowlists/function_transition_allowlist"),
    },
    test = True,
    toolchains = [TOOLCHAIN_TYPE],
)
