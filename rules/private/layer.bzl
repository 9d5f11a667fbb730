"""The layer rules: runtime_layer, framework_layer and application_layer share this implementation.

Per layer and target platform, two actions: `compose` (the layer's tree from its wheels' installed trees, a runtime
layer's from its python-build-standalone archive too, plus the files that chain it to its lower layers) and `pack`
(the deterministic archive and the metadata JSON). Wheels are installed by their own actions (installed_wheel.bzl),
shared by every layer that uses them. A runtime layer's compose also publishes what the layers above it need (its
RuntimeRecord and venv files), so nothing here depends on the target's OS. The JSON files handed to the actions are
the records of python/stacktool/contract.py, field for field.

A layer whose lock entry is missing or stale still analyzes (so `bazel run` of the lock target works); building
it fails with one message naming the lock target to run.
"""

load("//platforms:platforms.bzl", "TARGET_PLATFORMS")
load("//rules:providers.bzl", "LayerInfo", "LockedLayerInfo", "TargetPlatformInfo")
load(":stacktool.bzl", "RUNFILES_PRELUDE", "TOOLCHAIN_TYPE", "run_stacktool", "runfiles_path", "stacktool", "stacktool_command")

ENV_NAME_PREFIX = {"application": "app-", "framework": "framework-", "runtime": ""}
ARCHIVE_FORMATS = ["tar.zst", "tar.gz", "tar.xz", "zip"]
DEFAULT_LINUX_TARGET = "glibc@2.28"
DEFAULT_MACOSX_TARGET = "13.0"

def layer_key(package, name):
    return "{}:{}".format(package, name)

def pylock_name(env_name):
    """The layer's PEP 751 lock file name (the name part may not contain dots)."""
    return "pylock.{}.toml".format(env_name.replace(".", "_"))

def _lower_layers(direct):
    """Every layer below, nearest first and without repeats; the runtime last."""
    seen = {}
    order = []
    for layer in direct:
        for candidate in [layer] + layer.lower:
            if candidate.key not in seen:
                seen[candidate.key] = True
                order.append(candidate)
    return [below for below in order if below.kind != "runtime"] + [below for below in order if below.kind == "runtime"]

def _stack_base(ctx, kind):
    """(runtime LayerInfo or None, direct lower LayerInfos) after checking the layer graph."""
    if kind == "runtime":
        return None, []
    frameworks = [f[LayerInfo] for f in ctx.attr.frameworks]
    for dep, info in zip(ctx.attr.frameworks, frameworks):
        if info.kind != "framework":
            fail("{}: {} in `frameworks` is a {} layer; list framework layers there (a runtime goes in `runtime`)".format(ctx.label, dep.label, info.kind))
    if bool(ctx.attr.runtime) == bool(frameworks):
        fail("{}: set exactly one of `runtime` (a runtime layer) or `frameworks` (framework layers)".format(ctx.label))
    if ctx.attr.runtime:
        runtime = ctx.attr.runtime[LayerInfo]
        if runtime.kind != "runtime":
            fail("{}: `runtime` must be a runtime_layer, {} is a {} layer".format(ctx.label, ctx.attr.runtime.label, runtime.kind))
        return runtime, [runtime]
    runtimes = {f.runtime.key: f for f in frameworks}
    if len(runtimes) > 1:
        fail("{}: its frameworks sit on different runtimes ({}); all layers of one stack must share one runtime layer".format(
            ctx.label,
            ", ".join(["//{} on //{}".format(f.key, r) for r, f in runtimes.items()]),
        ))
    return frameworks[0].runtime, frameworks

def _platforms(ctx, direct):
    if not direct:
        return ctx.attr.platforms or sorted(TARGET_PLATFORMS)
    inherited = [p for p in direct[0].spec["platforms"] if all([p in d.spec["platforms"] for d in direct])]
    if not ctx.attr.platforms:
        return inherited
    extra = [p for p in ctx.attr.platforms if p not in inherited]
    if extra:
        fail("{}: `platforms` may only narrow what its lower layers are built for ({}); {} is not among them".format(
            ctx.label,
            ", ".join(inherited),
            ", ".join(extra),
        ))
    return ctx.attr.platforms

def _spec(ctx, kind, runtime, direct, lower):
    for p in ctx.attr.platforms:
        if p not in TARGET_PLATFORMS:
            fail("{}: unknown platform {}; supported: {}".format(ctx.label, repr(p), ", ".join(sorted(TARGET_PLATFORMS))))
    inherited = direct[0].spec if direct else {}
    return {
        "env_name": ENV_NAME_PREFIX[kind] + ctx.label.name,
        "key": layer_key(ctx.label.package, ctx.label.name),
        "kind": kind,
        "linux_target": ctx.attr.linux_target or inherited.get("linux_target", DEFAULT_LINUX_TARGET),
        "lower": [below.key for below in lower],
        "macosx_target": ctx.attr.macosx_target or inherited.get("macosx_target", DEFAULT_MACOSX_TARGET),
        "platforms": _platforms(ctx, direct),
        "pylock": pylock_name(ENV_NAME_PREFIX[kind] + ctx.label.name),
        "python": ctx.attr.python if kind == "runtime" else runtime.spec["python"],
        "requirements": ctx.attr.requirements,
    }

def _lock_problem(ctx, spec, locked, platform):
    """Why this layer cannot be built from its lock for `platform`, or None."""
    label = "//" + spec["key"]
    if not platform:
        return "{}: the target platform is not one rules_venvstacks supports; use --platforms=@rules_venvstacks//platforms:<name>".format(label)
    if platform not in spec["platforms"]:
        return "{} is not built for {} (its platforms: {}); add it to the layer's `platforms`".format(label, platform, ", ".join(spec["platforms"]))
    if locked == None:
        return "{} has no entry in any lock index: list it (or a layer above it) in a stack_lock target, register that target's index with `venvstacks.lock_file` in MODULE.bazel, and `bazel run` the lock target".format(label)
    run = "run `bazel run {}`".format(locked.lock_label)
    if locked.inputs != spec:
        changed = sorted([k for k in spec if spec[k] != locked.inputs.get(k)])
        return "{} changed since it was locked ({} differ): {}".format(label, ", ".join(changed), run)
    if len(ctx.files.pylock) != 1:
        return "{} is missing: {}".format(spec["pylock"], run)
    return None

def _fail_action(ctx, outputs, message):
    args = ctx.actions.args()
    args.add("--message", message)
    run_stacktool(ctx, "fail", args, [], outputs, "VenvstacksLockCheck", "Checking the lock of %{label}")

def _modules(ctx, files, attribute):
    """(destination below site-packages, file) of a launch or support module, and its module name."""
    entries = []
    for f in files:
        rel = f.short_path[len(f.owner.package) + 1:] if f.owner.package else f.short_path
        entries.append((rel, f))
    tops = {rel.split("/")[0]: True for rel, _ in entries}
    if len(tops) != 1:
        fail("{}: `{}` must be one .py file or the files of one package directory, got {}".format(ctx.label, attribute, ", ".join(sorted(tops))))
    top = tops.keys()[0]
    if "/" not in entries[0][0] and len(entries) == 1:
        if not top.endswith(".py"):
            fail("{}: `{}` {} is not a .py file or a package directory".format(ctx.label, attribute, top))
        return entries, top[:-len(".py")]
    return entries, top

def _app_modules(ctx, kind):
    """(destination, file) of the launch and support modules, and the launch module's name."""
    if kind != "application":
        return [], None
    entries, launch = _modules(ctx, ctx.files.launch_module, "launch_module")
    names = {launch: "launch_module"}
    for target in ctx.attr.support_modules:
        support, name = _modules(ctx, target.files.to_list(), "support_modules")
        if name in names:
            fail("{}: support module {} clashes with another module of the same name".format(ctx.label, name))
        names[name] = "support_modules"
        entries += support
    return entries, launch

def _compose_config(ctx, kind, spec, runtime, lower, locked, platform):
    """The ComposeConfig (python/stacktool/contract.py) and the compose action's inputs."""
    modules, launch = _app_modules(ctx, kind)
    config = {
        "dynlib_exclude": ctx.attr.dynlib_exclude,
        "env_name": spec["env_name"],
        "kind": kind,
        "launch_module": launch,
        "lower": [below.env_name for below in lower],
        "modules": [{"dest": rel, "src": f.path} for rel, f in modules],
        "platform": platform,
        "python": spec["python"],
        "runtime": spec["env_name"] if kind == "runtime" else runtime.env_name,
        "runtime_archive": None,
        "runtime_record": None,
        "runtime_source": None,
        "venv_files": None,
        "wheels": [{"filename": w.filename, "name": w.name, "sha256": w.sha256, "tree": w.tree.path, "version": w.version} for w in locked.wheels],
    }
    inputs = [w.tree for w in locked.wheels] + [f for _, f in modules]
    if kind == "runtime":
        config |= {"runtime_archive": locked.runtime_archive.path, "runtime_source": locked.runtime_source.path}
        inputs += [locked.runtime_archive, locked.runtime_source]
    else:
        config |= {"runtime_record": runtime.runtime_record.path, "venv_files": runtime.venv_files.path}
        inputs += [runtime.runtime_record, runtime.venv_files]
    return config, inputs

def _pack_config(ctx, spec, locked):
    """The PackConfig (python/stacktool/contract.py)."""
    return {
        "archive_format": ctx.attr.archive_format,
        "label": "//" + spec["key"],
        "layer_name": ctx.label.name,
        "lock_label": locked.lock_label,
        "pylock_sha256": locked.pylock_sha256,
    }

def _build_layer(ctx, kind, spec, runtime, lower, locked, platform, outputs):
    tree, symlinks, archive, metadata, runtime_record, venv_files = outputs
    config, inputs = _compose_config(ctx, kind, spec, runtime, lower, locked, platform)
    compose_config = ctx.actions.declare_file(ctx.label.name + ".layer/compose.json")
    ctx.actions.write(compose_config, json.encode_indent(config))
    args = ctx.actions.args()
    args.add("--config", compose_config)
    args.add("--out", tree.path)

    # The tree's symlinks, recorded by compose for pack: a tree artifact can reach pack with its symlinks
    # dereferenced (Bazel defines tree artifacts as regular files; remote execution, building without the bytes).
    args.add("--symlinks", symlinks)
    compose_outputs = [tree, symlinks]
    if kind == "runtime":
        args.add("--runtime-record", runtime_record)
        args.add("--venv-files", venv_files.path)
        compose_outputs += [runtime_record, venv_files]
    run_stacktool(ctx, "compose", args, [compose_config] + inputs, compose_outputs, "VenvstacksCompose", "Composing layer {} for {}".format(spec["env_name"], platform))

    pack_config = ctx.actions.declare_file(ctx.label.name + ".layer/pack.json")
    ctx.actions.write(pack_config, json.encode_indent(_pack_config(ctx, spec, locked)))
    args = ctx.actions.args()
    args.add("--tree", tree.path)
    args.add("--archive", archive)
    args.add("--metadata", metadata)
    args.add("--pylock", ctx.files.pylock[0])
    args.add("--config", pack_config)
    args.add("--symlinks", symlinks)
    inputs = [tree, symlinks, pack_config, ctx.files.pylock[0]]
    run_stacktool(ctx, "pack", args, inputs, [archive, metadata], "VenvstacksPack", "Packing layer {} for {}".format(spec["env_name"], platform))

def _run_script(ctx, layer_info):
    script = ctx.actions.declare_file(ctx.label.name)
    metadata = " ".join(['--metadata "$runfiles/{}"'.format(runfiles_path(ctx, m)) for m in layer_info.deploy_metadata])
    ctx.actions.write(script, "\n".join([
        "#!/usr/bin/env bash",
        "# bazel run {}: deploys the stack's archives (incrementally) and runs the layer.".format(ctx.label),
        "set -euo pipefail",
        RUNFILES_PRELUDE,
        'exec {} run --label {} {} -- "$@"'.format(stacktool_command(ctx), repr(str(ctx.label)), metadata),
        "",
    ]), is_executable = True)
    return script

def layer_impl(ctx, kind):
    """The implementation of the three layer rules.

    Args:
      ctx: the rule context.
      kind: `runtime`, `framework` or `application`.

    Returns:
      The layer's providers.
    """
    runtime, direct = _stack_base(ctx, kind)
    lower = _lower_layers(direct)
    spec = _spec(ctx, kind, runtime, direct, lower)
    platform = ctx.attr._platform[TargetPlatformInfo].name
    locked = ctx.attr.lock[LockedLayerInfo] if ctx.attr.lock else None
    prefix = "{}.layer/{}".format(ctx.label.name, spec["env_name"])
    tree = ctx.actions.declare_directory(prefix)
    symlinks = ctx.actions.declare_file(ctx.label.name + ".layer/symlinks.json")
    archive = ctx.actions.declare_file("{}-{}.{}".format(prefix, platform or "unsupported", ctx.attr.archive_format))
    metadata = ctx.actions.declare_file("{}-{}.json".format(prefix, platform or "unsupported"))
    if kind == "runtime":
        runtime_record = ctx.actions.declare_file(ctx.label.name + ".layer/runtime_record.json")
        venv_files = ctx.actions.declare_directory(ctx.label.name + ".layer/venv_files")
    else:
        runtime_record, venv_files = runtime.runtime_record, runtime.venv_files
    outputs = [tree, symlinks, archive, metadata, runtime_record, venv_files]
    problem = _lock_problem(ctx, spec, locked, platform)
    if problem:
        # Layers above a runtime layer that cannot be built take its record, so building them reports it too.
        _fail_action(ctx, outputs if kind == "runtime" else outputs[:4], problem)
    else:
        _build_layer(ctx, kind, spec, runtime, lower, locked, platform, outputs)
    info = LayerInfo(
        key = spec["key"],
        kind = kind,
        env_name = spec["env_name"],
        spec = spec,
        runtime = runtime,
        lower = lower,
        runtime_record = runtime_record,
        venv_files = venv_files,
        tree = tree,
        archive = archive,
        metadata = metadata,
        deploy_metadata = [below.metadata for below in reversed(lower)] + [metadata],
    )
    script = _run_script(ctx, info)
    published = depset([tree, archive, metadata], transitive = [depset([below.tree, below.archive, below.metadata]) for below in lower])
    runfiles = ctx.runfiles(
        files = [below.archive for below in lower] + [below.metadata for below in lower] + [archive, metadata],
        transitive_files = stacktool(ctx).files,
    )
    return [
        info,
        DefaultInfo(files = published, executable = script, runfiles = runfiles),
        OutputGroupInfo(
            archives = depset([archive], transitive = [depset([below.archive]) for below in lower]),
            metadata = depset([metadata], transitive = [depset([below.metadata]) for below in lower]),
            trees = depset([tree], transitive = [depset([below.tree]) for below in lower]),
        ),
    ]

COMMON_ATTRS = {
    "archive_format": attr.string(
        default = "tar.zst",
        values = ARCHIVE_FORMATS,
        doc = "Format of the published archive: `tar.zst` (default), `tar.gz`, `tar.xz` or `zip`.",
    ),
    "dynlib_exclude": attr.string_list(
        doc = "Shared libraries (fnmatch patterns on their path below site-packages) not to expose to upper layers.",
    ),
    "linux_target": attr.string(
        doc = "Oldest glibc the layer must run on, as `glibc@X.Y` (wheels up to manylinux_X_Y). Default: the lower layer's, else glibc@2.28.",
    ),
    "lock": attr.label(
        providers = [LockedLayerInfo],
        doc = "The layer's entry in the hub repository; set by the layer macros from the lock index.",
    ),
    "macosx_target": attr.string(
        doc = "Oldest macOS the layer must run on, e.g. `14.0`. Default: the lower layer's, else 13.0.",
    ),
    "platforms": attr.string_list(
        doc = "Target platforms to lock and build for (venvstacks names). Default: all for a runtime, else those of the lower layers; may only narrow them.",
    ),
    "pylock": attr.label_list(
        allow_files = [".toml"],
        doc = "The layer's pylock.<env_name>.toml (set by the layer macros; empty until locked).",
    ),
    "requirements": attr.string_list(
        doc = "PEP 508 requirements of the layer. Packages that lower layers provide are not installed again.",
    ),
    "_platform": attr.label(default = "//platforms:current", providers = [TargetPlatformInfo]),
}

VENV_ATTRS = {
    "frameworks": attr.label_list(
        providers = [LayerInfo],
        doc = "Framework layers this layer sits on, nearest first. Set this or `runtime`.",
    ),
    "runtime": attr.label(
        providers = [LayerInfo],
        doc = "The runtime layer this layer sits on directly. Set this or `frameworks`.",
    ),
}

def _runtime_layer_impl(ctx):
    return layer_impl(ctx, "runtime")

def _framework_layer_impl(ctx):
    return layer_impl(ctx, "framework")

def _application_layer_impl(ctx):
    return layer_impl(ctx, "application")

runtime_layer_rule = rule(
    implementation = _runtime_layer_impl,
    doc = "A python-build-standalone CPython, optionally with packages installed into it. Use the `runtime_layer` macro.",
    attrs = COMMON_ATTRS | {
        "python": attr.string(mandatory = True, doc = "CPython version X.Y, e.g. `3.11`."),
    },
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
    provides = [LayerInfo],
)

framework_layer_rule = rule(
    implementation = _framework_layer_impl,
    doc = "A virtual environment of shared dependencies over a runtime or other frameworks. Use the `framework_layer` macro.",
    attrs = COMMON_ATTRS | VENV_ATTRS,
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
    provides = [LayerInfo],
)

application_layer_rule = rule(
    implementation = _application_layer_impl,
    doc = "A thin virtual environment with a launch module, over frameworks or a runtime. Use the `application_layer` macro.",
    attrs = COMMON_ATTRS | VENV_ATTRS | {
        "launch_module": attr.label(
            allow_files = True,
            mandatory = True,
            doc = "The module `bazel run` starts with `python -m`: one .py file, or the files of a package directory.",
        ),
        "support_modules": attr.label_list(
            allow_files = True,
            doc = "Further modules (.py files or package directories) installed beside the launch module.",
        ),
    },
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
    provides = [LayerInfo],
)
