"""The layer rules: runtime_layer, framework_layer and application_layer share this implementation.

Per layer and target platform, one action builds what is published: `pack` composes the layer (its wheels'
installed trees, a runtime layer's python-build-standalone archive too, plus the files that chain it to its lower
layers) and writes the deterministic archive, the metadata JSON and the SBOM, without writing the layer anywhere.
`compose` writes the same layer as a tree, only for the `trees` output group. Wheels are installed by their own actions
(installed_wheel.bzl), shared by every layer that uses them. A runtime layer's `runtime-record` action publishes
what the layers above it need (its RuntimeRecord and venv files), so nothing here depends on the target's OS. The
JSON files handed to the actions are the records of python/stacktool/contract.py, field for field.

A layer whose lock entry is missing or stale still analyzes (so `bazel run` of the lock target works); building
it fails with one message naming the lock target to run.
"""

load("@venvstacks_hub//:layers.bzl", "INDEXES", "INDEX_PROBLEMS", "LAYER_PROBLEMS")
load("//platforms:platforms.bzl", "TARGET_PLATFORMS")
load("//rules:providers.bzl", "LayerInfo", "LockedLayerInfo", "TargetPlatformInfo")
load(":labels.bzl", "label_text")
load(":stacktool.bzl", "RUNFILES_PRELUDE", "TOOLCHAIN_TYPE", "run_stacktool", "runfiles_path", "stacktool", "stacktool_command")

ENV_NAME_PREFIX = {"application": "app-", "framework": "framework-", "runtime": "", "test": "test-"}

# FORMATS in python/stacktool/archive.py (tests/unit/test_archive.py checks that they agree).
ARCHIVE_FORMATS = ["tar.zst", "tar.gz", "tar.xz", "zip"]
DEFAULT_LINUX_TARGET = "glibc@2.28"
DEFAULT_MACOSX_TARGET = "13.0"

# Pack is not sandboxed locally: its inputs are the installed trees of all the layer's wheels (tens of thousands of
# files for PyTorch), which a sandbox stages one symlink at a time, seconds on the critical path (docs/benchmarks.md).
# It reads only the paths its ComposeConfig names, which are its declared inputs, and writes only its declared
# outputs; it still runs remotely and is cached like any action.
# `--modify_execution_info=VenvstacksPack=-no-sandbox` sandboxes it again.
PACK_EXECUTION_REQUIREMENTS = {"no-sandbox": "1"}

def layer_key(package, name):
    return "{}:{}".format(package, name)

def pylock_name(env_name):
    """The layer's PEP 751 lock file name (the name part may not contain dots)."""
    return "pylock.{}.toml".format(env_name.replace(".", "_"))

def _order_clash(sequences):
    """Two sequences of (owner, [LayerInfo]) that order two layers both ways, as text."""
    for owner_a, seq_a in sequences:
        position = {layer.key: i for i, layer in enumerate(seq_a)}
        for owner_b, seq_b in sequences:
            keys = [layer.key for layer in seq_b if layer.key in position]
            for i in range(len(keys) - 1):
                if position[keys[i]] > position[keys[i + 1]]:
                    return "{} puts //{} before //{}, but {} puts //{} before //{}".format(
                        owner_a,
                        keys[i + 1],
                        keys[i],
                        owner_b,
                        keys[i],
                        keys[i + 1],
                    )
    return "the orders of its frameworks conflict"

def _c3(ctx, direct):
    """The frameworks below this layer in venvstacks' C3 order (Python's MRO).

    Nearest first, each before the frameworks it sits on, the order of `frameworks` kept; fails naming two orders
    that clash.
    """
    sequences = [("//{} (over {})".format(f.key, ", ".join(["//" + g.key for g in f.frameworks]) or "its runtime"), [f] + f.frameworks) for f in direct]
    sequences.append(("`frameworks` of {}".format(label_text(ctx.label)), direct))
    remaining = [seq for _, seq in sequences]
    order = []
    for _ in range(len([layer for seq in remaining for layer in seq])):
        remaining = [seq for seq in remaining if seq]
        if not remaining:
            break
        tails = {layer.key: True for seq in remaining for layer in seq[1:]}
        heads = [seq[0] for seq in remaining if seq[0].key not in tails]
        if not heads:
            fail("{}: its frameworks cannot be put in one order (C3): {}; reorder `frameworks` so they agree".format(label_text(ctx.label), _order_clash(sequences)))
        order.append(heads[0])
        remaining = [seq[1:] if seq[0].key == heads[0].key else seq for seq in remaining]
    return order

def _stack_base(ctx, kind):
    """(runtime LayerInfo or None, frameworks below in C3 order) after checking the layer graph.

    A test layer sits on an application: the application comes first, then what the application sits on.
    """
    if kind == "runtime":
        return None, []
    if kind == "test":
        app = ctx.attr.app[LayerInfo]
        if app.disabled or app.kind != "application":
            fail("{}: `app` must be an application layer that is not disabled, {} is not".format(label_text(ctx.label), label_text(ctx.attr.app.label)))
        return app.runtime, [app] + app.frameworks
    frameworks = [f[LayerInfo] for f in ctx.attr.frameworks]
    for dep, info in zip(ctx.attr.frameworks + ([ctx.attr.runtime] if ctx.attr.runtime else []), frameworks + ([ctx.attr.runtime[LayerInfo]] if ctx.attr.runtime else [])):
        if info.disabled:
            fail("{}: it sits on {}, which is disabled (`platforms = []`); give that layer platforms, or disable this one too".format(label_text(ctx.label), label_text(dep.label)))
    for dep, info in zip(ctx.attr.frameworks, frameworks):
        if info.kind != "framework":
            fail("{}: {} in `frameworks` is a {} layer; list framework layers there (a runtime goes in `runtime`)".format(label_text(ctx.label), label_text(dep.label), info.kind))
    if bool(ctx.attr.runtime) == bool(frameworks):
        fail("{}: set exactly one of `runtime` (a runtime layer) or `frameworks` (framework layers)".format(label_text(ctx.label)))
    if ctx.attr.runtime:
        runtime = ctx.attr.runtime[LayerInfo]
        if runtime.kind != "runtime":
            fail("{}: `runtime` must be a runtime_layer, {} is a {} layer".format(label_text(ctx.label), label_text(ctx.attr.runtime.label), runtime.kind))
        return runtime, []
    runtimes = {f.runtime.key: f for f in frameworks}
    if len(runtimes) > 1:
        fail("{}: its frameworks sit on different runtimes ({}); all layers of one stack must share one runtime layer".format(
            label_text(ctx.label),
            ", ".join(["//{} on //{}".format(f.key, r) for r, f in runtimes.items()]),
        ))
    return frameworks[0].runtime, _c3(ctx, frameworks)

def _platforms(ctx, lower):
    if not lower:
        return ctx.attr.platforms or sorted(TARGET_PLATFORMS)
    inherited = [p for p in lower[0].spec["platforms"] if all([p in d.spec["platforms"] for d in lower])]
    if not ctx.attr.platforms:
        return inherited
    extra = [p for p in ctx.attr.platforms if p not in inherited]
    if extra:
        fail("{}: `platforms` may only narrow what its lower layers are built for ({}); {} is not among them".format(
            label_text(ctx.label),
            ", ".join(inherited),
            ", ".join(extra),
        ))
    return ctx.attr.platforms

def _version(ctx, attribute, text, pattern_doc):
    """(major, minor) of `glibc@X.Y` / `X.Y` / `X`; fails naming the attribute."""
    parts = text.removeprefix("glibc@").split(".") if attribute == "linux_target" else text.split(".")
    valid = (len(parts) == 2 or (len(parts) == 1 and attribute == "macosx_target")) and all([p.isdigit() for p in parts])
    if not valid or (attribute == "linux_target" and not text.startswith("glibc@")):
        fail("{}: {} {} is not of the form {}".format(label_text(ctx.label), attribute, repr(text), pattern_doc))
    return (int(parts[0]), int(parts[1]) if len(parts) == 2 else 0)

def _target(ctx, attribute, default, lower, pattern_doc):
    """The deployment target: the layer's own (or the default), raised to the newest of its lower layers'."""
    chosen = getattr(ctx.attr, attribute) or default
    for below in lower:
        if _version(ctx, attribute, below.spec[attribute], pattern_doc) > _version(ctx, attribute, chosen, pattern_doc):
            chosen = below.spec[attribute]
    _version(ctx, attribute, chosen, pattern_doc)
    return chosen

def _distribution(name):
    """A distribution name as packaging canonicalises it (PEP 503)."""
    return "-".join([part for part in name.lower().replace("_", "-").replace(".", "-").split("-") if part])

def _check_index_names(ctx):
    """Every index the layer names is one MODULE.bazel declares."""
    named = [("package_indexes", n) for n in ctx.attr.package_indexes.values()] + [("priority_indexes", n) for n in ctx.attr.priority_indexes]
    named += [("index_overrides", n) for pair in ctx.attr.index_overrides.items() for n in pair]
    for attribute, name in named:
        if name not in INDEXES:
            fail("{}: `{}` names the package index {}, which MODULE.bazel does not declare (declared: {}); add `venvstacks.index(name = {}, url = ...)` there, or fix the name".format(
                label_text(ctx.label),
                attribute,
                repr(name),
                ", ".join(sorted(INDEXES)) or "none",
                repr(name),
            ))

def _package_indexes(ctx, lower):
    """distribution -> index of this layer, checked as venvstacks checks them.

    Its lower layers' (which must agree) and its own `package_indexes`; `index_overrides = {"a": "b"}` accepts
    index b where a lower layer uses a.
    """
    _check_index_names(ctx)
    overrides = ctx.attr.index_overrides
    used = {}
    mapping, origin = {}, {}
    for below in lower:  # nearest first
        for dist, index in below.spec["package_indexes"].items():
            if mapping.get(dist, index) == index:
                mapping[dist], origin[dist] = index, origin.get(dist, below.key)
            elif overrides.get(index) == mapping[dist]:
                used[index] = True
            elif overrides.get(mapping[dist]) == index:
                used[mapping[dist]] = True
                mapping[dist], origin[dist] = index, below.key
            else:
                fail("{}: its lower layers take {} from different indexes (//{}: {}, //{}: {}); add `index_overrides = {{{}: {}}}` to accept {}".format(
                    label_text(ctx.label),
                    dist,
                    origin[dist],
                    mapping[dist],
                    below.key,
                    index,
                    repr(index),
                    repr(mapping[dist]),
                    mapping[dist],
                ))
    for name, index in ctx.attr.package_indexes.items():
        dist = _distribution(name)
        if dist in mapping and mapping[dist] != index:
            if overrides.get(mapping[dist]) != index:
                fail("{}: `package_indexes` takes {} from {}, but its lower layer //{} takes it from {}; add `index_overrides = {{{}: {}}}` to accept that".format(
                    label_text(ctx.label),
                    dist,
                    index,
                    origin[dist],
                    mapping[dist],
                    repr(mapping[dist]),
                    repr(index),
                ))
            used[mapping[dist]] = True
        mapping[dist] = index
    for index in overrides:
        if index not in used:
            fail("{}: `index_overrides` = {{{}: {}}} overrides nothing (no lower layer takes a package from {} where this layer takes it from {}); remove it".format(
                label_text(ctx.label),
                repr(index),
                repr(overrides[index]),
                index,
                overrides[index],
            ))
    return mapping

def _python(ctx, kind, runtime):
    """(X.Y, the exact X.Y.Z asked for or "")."""
    if kind != "runtime":
        return runtime.spec["python"], ""
    parts = ctx.attr.python.split(".")
    if len(parts) not in (2, 3) or not all([p.isdigit() for p in parts]) or parts[0] != "3":
        fail("{}: python = {} is not a CPython version 3.Y or 3.Y.Z (e.g. \"3.11\" or \"3.11.13\")".format(label_text(ctx.label), repr(ctx.attr.python)))
    return ".".join(parts[:2]), (ctx.attr.python if len(parts) == 3 else "")

def _spec(ctx, kind, runtime, frameworks):
    """The LayerSpec (python/stacktool/contract.py): what the lock verb resolves for this layer."""
    for p in ctx.attr.platforms:
        if p not in TARGET_PLATFORMS:
            fail("{}: unknown platform {}; supported: {}".format(label_text(ctx.label), repr(p), ", ".join(sorted(TARGET_PLATFORMS))))
    lower = frameworks + ([runtime] if runtime else [])
    python, python_version = _python(ctx, kind, runtime)
    return {
        "env_name": ENV_NAME_PREFIX[kind] + ctx.label.name,
        "key": layer_key(ctx.label.package, ctx.label.name),
        "kind": kind,
        "linux_target": _target(ctx, "linux_target", DEFAULT_LINUX_TARGET, lower, "'glibc@X.Y' (e.g. 'glibc@2.35')"),
        "lower": [below.key for below in lower],
        "macosx_target": _target(ctx, "macosx_target", DEFAULT_MACOSX_TARGET, lower, "'X.Y' (e.g. '14.0')"),
        "platforms": _platforms(ctx, lower),
        "pylock": pylock_name(ENV_NAME_PREFIX[kind] + ctx.label.name),
        "python": python,
        "python_version": python_version,
        "requirements": ctx.attr.requirements,
        "requirements_files": [_workspace_path(ctx, f) for f in ctx.files.requirements_files],
        "dependency_groups": ctx.attr.dependency_groups,
        "package_indexes": _package_indexes(ctx, lower),
        "priority_indexes": ctx.attr.priority_indexes,
        "versioned": ctx.attr.versioned,
    }

def _workspace_path(ctx, file):
    """A requirements file's path in the workspace, where the lock target reads it."""
    if not file.is_source or file.owner.workspace_name:
        fail("{}: requirements file {} must be a source file of this workspace (the lock target reads it there)".format(label_text(ctx.label), label_text(file.owner)))
    return file.short_path

def _platform_problem(spec, platform):
    """Why this layer is not built for the target platform, or None."""
    label = "//" + spec["key"]
    if not platform:
        return "{}: the target platform is not one rules_venvstacks supports; use --platforms=@rules_venvstacks//platforms:<name>".format(label)
    if platform not in spec["platforms"]:
        return "{} is not built for {} (its platforms: {}); add it to the layer's `platforms`".format(label, platform, ", ".join(spec["platforms"]))
    return None

def _lock_problem(ctx, spec, locked):
    """Why the layer's lock cannot be used (missing or stale), naming the fix, or None."""
    label = "//" + spec["key"]
    if locked == None:
        if spec["key"] in LAYER_PROBLEMS:
            return LAYER_PROBLEMS[spec["key"]]
        if INDEX_PROBLEMS:
            return "{} has no entry in a lock index that can be read: {}".format(label, "; ".join(INDEX_PROBLEMS))
        return "{} has no entry in any lock index: list it (or a layer above it) in a stack_lock target, register that target's index with `venvstacks.lock_file` in MODULE.bazel, and `bazel run` the lock target".format(label)
    run = "run `bazel run {}`".format(locked.lock_label)
    if locked.inputs != spec:
        changed = sorted([k for k in spec if spec[k] != locked.inputs.get(k)])
        return "{} changed since it was locked ({} differ): {}".format(label, ", ".join(changed), run)
    if len(ctx.files.pylock) != 1:
        return "{} is missing: {}".format(spec["pylock"], run)
    return None

def _fail_action(ctx, outputs, message):
    """An action that fails with `message` when any of `outputs` is built (deferred analysis problems).

    The message goes in a file, so that Bazel's echo of the failed command line does not repeat it.
    """
    problem = ctx.actions.declare_file(ctx.label.name + ".layer/problem.txt")
    ctx.actions.write(problem, message + "\n")
    args = ctx.actions.args()
    args.add("--message-file", problem)
    run_stacktool(ctx, "fail", args, [problem], outputs, "VenvstacksLockCheck", "Checking the lock of %{label}")

def _is_identifier(name):
    return bool(name) and not name[0].isdigit() and all([c.isalnum() or c == "_" for c in name.elems()])

def _modules(ctx, target, attribute):
    """One launch or support module: [(destination below site-packages, file)] and the module's name.

    The name is the file's name without `.py`, or the package directory's name (as venvstacks names them).
    """
    files = [f for f in target.files.to_list() if "__pycache__" not in f.short_path.split("/") and not f.basename.endswith((".pyc", ".pyo"))]
    if not files:
        fail("{}: `{}` {} has no files; point it at a .py file or at the files of a package directory".format(label_text(ctx.label), attribute, label_text(target.label)))
    if len(files) == 1 and files[0].basename != "__init__.py":
        if files[0].extension != "py":
            fail("{}: `{}` {} is not a .py file or the files of a package directory; point it at the module's .py file (or a filegroup of its package directory)".format(label_text(ctx.label), attribute, files[0].short_path))
        name = files[0].basename[:-len(".py")]
        if not _is_identifier(name):
            fail("{}: `{}` {} cannot be imported: {} is not a Python module name; rename the file (letters, digits and _)".format(label_text(ctx.label), attribute, files[0].short_path, repr(name)))
        return [(files[0].basename, files[0])], name

    # A package directory: the deepest directory holding all the files.
    directory = files[0].short_path.rpartition("/")[0].split("/")
    for f in files[1:]:
        parts = f.short_path.split("/")[:-1]
        common = 0
        for mine, theirs in zip(directory, parts):
            if mine != theirs:
                break
            common += 1
        directory = directory[:common]
    name = directory[-1] if directory else ""
    if not _is_identifier(name) or not [f for f in files if f.short_path == "/".join(directory + ["__init__.py"])]:
        fail("{}: `{}` {} must be one .py file or the files of one package directory (with its __init__.py); add the __init__.py or list one module".format(label_text(ctx.label), attribute, label_text(target.label)))
    return [(name + "/" + f.short_path[len("/".join(directory)) + 1:], f) for f in files], name

def _app_modules(ctx, kind):
    """(destination, file) of the launch and support modules, the launch module's name, the support modules'."""
    if kind != "application":
        return [], None, []
    entries, launch = _modules(ctx, ctx.attr.launch_module, "launch_module")
    names = {launch: "the launch module"}
    support = []
    for target in ctx.attr.support_modules:
        files, name = _modules(ctx, target, "support_modules")
        if name in names:
            fail("{}: support module {} ({}) has the name of {}; rename one of them".format(label_text(ctx.label), repr(name), label_text(target.label), names[name]))
        names[name] = "another support module"
        entries += files
        support.append(name)
    return entries, launch, sorted(support)

def _compose_config(ctx, kind, spec, runtime, lower, locked, platform, install_target):
    """(ComposeConfig, the inputs of the actions that compose the layer, the runtime archive's files among them).

    The ComposeConfig is python/stacktool/contract.py's; the runtime archive's files are a runtime layer's, else [].
    """
    modules, launch, support = _app_modules(ctx, kind)
    config = {
        "dynlib_exclude": ctx.attr.dynlib_exclude,
        "env_name": spec["env_name"],
        "install_target": install_target,
        "kind": kind,
        "launch_module": launch,
        "lower": [below.install_target for below in lower],
        "modules": [{"dest": rel, "src": f.path} for rel, f in modules],
        "platform": platform,
        "python": spec["python"],
        "python_version": spec["python_version"],
        "runtime": install_target if kind == "runtime" else runtime.install_target,
        "runtime_archive": None,
        "runtime_origin": None,
        "runtime_record": None,
        "runtime_source": None,
        "support_modules": support,
        "venv_files": None,
        "wheels": [{"filename": w.filename, "name": w.name, "sha256": w.sha256, "tree": w.tree.path, "version": w.version} for w in locked.wheels],
    }
    inputs = [w.tree for w in locked.wheels] + [f for _, f in modules]
    runtime_inputs = []
    if kind == "runtime":
        if ctx.file.runtime_archive:
            config |= {"runtime_archive": ctx.file.runtime_archive.path, "runtime_origin": str(ctx.attr.runtime_archive.label)}
            runtime_inputs = [ctx.file.runtime_archive]
        else:
            config |= {"runtime_archive": locked.runtime_archive.path, "runtime_source": locked.runtime_source.path}
            runtime_inputs = [locked.runtime_archive, locked.runtime_source]
    else:
        config |= {"runtime_record": runtime.runtime_record.path, "venv_files": runtime.venv_files.path}
        inputs += [runtime.runtime_record, runtime.venv_files]
    return config, inputs + runtime_inputs, runtime_inputs

def _requirement_files_check(ctx, spec, locked):
    """[a stamp] that exists only while the layer's requirements files are as they were locked, or []."""
    if not ctx.files.requirements_files:
        return []
    stamp = ctx.actions.declare_file(ctx.label.name + ".layer/requirements_files.ok")
    args = ctx.actions.args()
    args.add("--lock", locked.lock_label)
    args.add("--stamp", stamp)
    for f, path in zip(ctx.files.requirements_files, spec["requirements_files"]):
        args.add_all("--file", [f, locked.requirements_files.get(path, "unlocked"), path])
    run_stacktool(ctx, "check-lock", args, ctx.files.requirements_files, [stamp], "VenvstacksLockCheck", "Checking the requirements files of %{label}")
    return [stamp]

def _pack_config(ctx, spec, locked):
    """The PackConfig (python/stacktool/contract.py)."""
    return {
        "archive_format": ctx.attr.archive_format,
        "label": "//" + spec["key"],
        "lock_label": locked.lock_label,
        "lock_version": locked.lock_version,
        "locked_at": locked.locked_at,
        "pylock_sha256": locked.pylock_sha256,
        "requirements_hash": locked.requirements_hash,
    }

def _build_layer(ctx, kind, spec, runtime, lower, locked, platform, install_target, outputs):
    tree, archive, metadata, runtime_record, venv_files, sbom = outputs
    config, inputs, runtime_inputs = _compose_config(ctx, kind, spec, runtime, lower, locked, platform, install_target)
    inputs += _requirement_files_check(ctx, spec, locked)
    compose_config = ctx.actions.declare_file(ctx.label.name + ".layer/compose.json")
    ctx.actions.write(compose_config, json.encode_indent(config))
    pack_config = ctx.actions.declare_file(ctx.label.name + ".layer/pack.json")
    ctx.actions.write(pack_config, json.encode_indent(_pack_config(ctx, spec, locked)))

    # Pack composes the layer and archives it in one action: the published outputs never wait for a composed tree to
    # be hashed, staged or handed over without its symlinks (python/stacktool/pack.py).
    args = ctx.actions.args()
    args.add("--layer", compose_config)
    args.add("--config", pack_config)
    args.add("--archive", archive)
    args.add("--metadata", metadata)
    args.add("--sbom", sbom)
    args.add("--pylock", ctx.files.pylock[0])
    pack_inputs = [compose_config, pack_config, ctx.files.pylock[0]] + inputs
    run_stacktool(ctx, "pack", args, pack_inputs, [archive, metadata, sbom], "VenvstacksPack", "Packing layer {} for {}".format(spec["env_name"], platform), PACK_EXECUTION_REQUIREMENTS)

    if kind == "runtime":
        # What the layers above need from the runtime, by an action of its own (it unpacks the archive only for a
        # Windows runtime's venv launchers): they do not wait for the runtime layer to be packed.
        args = ctx.actions.args()
        args.add("--config", compose_config)
        args.add("--out", runtime_record)
        args.add("--venv-files", venv_files.path)
        run_stacktool(ctx, "runtime-record", args, [compose_config] + runtime_inputs, [runtime_record, venv_files], "VenvstacksRuntimeRecord", "Reading runtime {} for {}".format(spec["env_name"], platform))

    # The same layer as a tree, for the `trees` output group only.
    args = ctx.actions.args()
    args.add("--config", compose_config)
    args.add("--out", tree.path)
    run_stacktool(ctx, "compose", args, [compose_config] + inputs, [tree], "VenvstacksCompose", "Composing the tree of layer {} for {}".format(spec["env_name"], platform))

def _run_script(ctx, layer_info):
    script = ctx.actions.declare_file(ctx.label.name)
    metadata = " ".join(['--metadata "$runfiles/{}"'.format(runfiles_path(ctx, m)) for m in layer_info.deploy_metadata])
    ctx.actions.write(script, "\n".join([
        "#!/usr/bin/env bash",
        "# bazel run {}: deploys the stack's archives (incrementally) and runs the layer.".format(label_text(ctx.label)),
        "set -euo pipefail",
        RUNFILES_PRELUDE,
        'exec {} run --label {} {} -- "$@"'.format(stacktool_command(ctx), repr(str(ctx.label)), metadata),
        "",
    ]), is_executable = True)
    return script

def _locked_files(ctx, spec, locked):
    """(file, sha256 when locked, workspace path) of the files the lock covers: the pylock file, requirements files."""
    if not locked or not ctx.files.pylock:
        return []
    pylock = ctx.files.pylock[0]
    return [struct(file = pylock, sha256 = locked.pylock_sha256, path = pylock.short_path)] + [
        struct(file = f, sha256 = locked.requirements_files.get(path, "unlocked"), path = path)
        for f, path in zip(ctx.files.requirements_files, spec["requirements_files"])
    ]

def _disabled_layer(ctx, kind):
    """A layer with `platforms = []`: never locked or built; a layer over it is an error naming it."""
    script = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.write(script, "#!/bin/sh\necho '{} is disabled (platforms = [])' >&2\nexit 1\n".format(label_text(ctx.label)), is_executable = True)
    info = LayerInfo(
        key = layer_key(ctx.label.package, ctx.label.name),
        kind = kind,
        env_name = ENV_NAME_PREFIX[kind] + ctx.label.name,
        disabled = True,
        **{field: None for field in _LAYER_FIELDS}
    )
    return [info, DefaultInfo(executable = script)]

_LAYER_FIELDS = [
    "install_target",
    "spec",
    "runtime",
    "frameworks",
    "lower",
    "lock_problem",
    "locked_files",
    "runtime_record",
    "venv_files",
    "tree",
    "archive",
    "metadata",
    "sbom",
    "deploy_metadata",
]

def layer_impl(ctx, kind):
    """The implementation of the three layer rules.

    Args:
      ctx: the rule context.
      kind: `runtime`, `framework` or `application`.

    Returns:
      The layer's providers.
    """
    if ctx.attr.disabled:
        return _disabled_layer(ctx, kind)
    runtime, frameworks = _stack_base(ctx, kind)
    lower = frameworks + ([runtime] if runtime else [])
    spec = _spec(ctx, kind, runtime, frameworks)
    platform = ctx.attr._platform[TargetPlatformInfo].name
    locked = ctx.attr.lock[LockedLayerInfo] if ctx.attr.lock else None
    lock_problem = _lock_problem(ctx, spec, locked)
    problem = _platform_problem(spec, platform) or lock_problem
    if not problem and not locked.platform:  # the entry without wheels a layer sees while its stack is locked
        problem = "{} is being locked, not built".format(label_text(ctx.label))
    install_target = locked.install_target if locked and not problem else spec["env_name"]
    prefix = "{}.layer/{}".format(ctx.label.name, install_target)
    tree = ctx.actions.declare_directory("{}.layer/{}".format(ctx.label.name, spec["env_name"]))
    archive = ctx.actions.declare_file("{}-{}.{}".format(prefix, platform or "unsupported", ctx.attr.archive_format))
    metadata = ctx.actions.declare_file("{}-{}.json".format(prefix, platform or "unsupported"))
    sbom = ctx.actions.declare_file("{}-{}.cdx.json".format(prefix, platform or "unsupported"))
    if kind == "runtime":
        runtime_record = ctx.actions.declare_file(ctx.label.name + ".layer/runtime_record.json")
        venv_files = ctx.actions.declare_directory(ctx.label.name + ".layer/venv_files")
    else:
        runtime_record, venv_files = runtime.runtime_record, runtime.venv_files
    outputs = [tree, archive, metadata, runtime_record, venv_files, sbom]
    if problem:
        # Layers above a runtime layer that cannot be built take its record, so building them reports it too.
        _fail_action(ctx, outputs if kind == "runtime" else [tree, archive, metadata, sbom], problem)
    else:
        _build_layer(ctx, kind, spec, runtime, lower, locked, platform, install_target, outputs)
    info = LayerInfo(
        key = spec["key"],
        kind = kind,
        env_name = spec["env_name"],
        disabled = False,
        install_target = install_target,
        spec = spec,
        runtime = runtime,
        frameworks = frameworks,
        lower = lower,
        lock_problem = lock_problem,
        locked_files = _locked_files(ctx, spec, locked),
        runtime_record = runtime_record,
        venv_files = venv_files,
        tree = tree,
        archive = archive,
        metadata = metadata,
        sbom = sbom,
        deploy_metadata = [below.metadata for below in reversed(lower)] + [metadata],
    )
    script = _run_script(ctx, info)
    published = depset([archive, metadata, sbom], transitive = [depset([below.archive, below.metadata, below.sbom]) for below in lower])
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
            sboms = depset([sbom], transitive = [depset([below.sbom]) for below in lower]),
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
        doc = "Oldest glibc the layer must run on, as `glibc@X.Y` (wheels up to manylinux_X_Y). Default: glibc@2.28; never older than the newest of its lower layers' (it is raised to that).",
    ),
    "lock": attr.label(
        providers = [LockedLayerInfo],
        doc = "The layer's entry in the hub repository; set by the layer macros from the lock index.",
    ),
    "macosx_target": attr.string(
        doc = "Oldest macOS the layer must run on, e.g. `14.0`. Default: 13.0; never older than the newest of its lower layers' (it is raised to that).",
    ),
    "disabled": attr.bool(
        doc = "Never lock or build this layer (the layer macros set it for `platforms = []`, as in venvstacks); a layer over it is an error.",
    ),
    "platforms": attr.string_list(
        doc = "Target platforms to lock and build for (venvstacks names). Default (empty): all for a runtime, else those all its lower layers are built for; may only narrow them.",
    ),
    "pylock": attr.label_list(
        allow_files = [".toml"],
        doc = "The layer's pylock.<env_name>.toml (set by the layer macros; empty until locked).",
    ),
    "index_overrides": attr.string_dict(
        doc = "Accept a package index other than a lower layer's: `{\"pytorch-cpu\": \"pytorch-cu128\"}` lets this layer (or another of its lower layers) take from `pytorch-cu128` what a lower layer takes from `pytorch-cpu` (venvstacks' `index_overrides`). An override that overrides nothing is an error.",
    ),
    "package_indexes": attr.string_dict(
        doc = "Distribution -> name of a package index MODULE.bazel declares (`venvstacks.index`): where this layer, and the layers above it, take that package from (venvstacks' `package_indexes`), e.g. `{\"torch\": \"pytorch-cpu\"}`.",
    ),
    "priority_indexes": attr.string_list(
        doc = "Names of declared package indexes this layer tries first, in this order, before the default index (venvstacks' `priority_indexes`; not inherited).",
    ),
    "dependency_groups": attr.string_list(
        doc = "Dependency groups (PEP 735) of the pyproject.toml files in `requirements_files` to add to the requirements.",
    ),
    "requirements": attr.string_list(
        doc = "PEP 508 requirements of the layer. Packages that lower layers provide are not installed again.",
    ),
    "requirements_files": attr.label_list(
        allow_files = [".in", ".txt", ".toml"],
        doc = "More requirements, from files of this workspace: `requirements.in`-style files (requirements, and `-r` includes listed here too) or a pyproject.toml (`[project] dependencies` and the `dependency_groups`). The lock records each file's sha256; building the layer after a file changed fails naming the lock target to run.",
    ),
    "versioned": attr.bool(
        doc = "Deploy the layer as `<env_name>@<lock version>`: the lock bumps the version whenever what the layer installs, its spec or the versions of its lower layers change, so old and new versions deploy side by side (venvstacks' `versioned`).",
    ),
    "_platform": attr.label(default = "//platforms:current", providers = [TargetPlatformInfo]),
}

VENV_ATTRS = {
    "frameworks": attr.label_list(
        providers = [LayerInfo],
        doc = "Framework layers this layer sits on, nearest first. With the frameworks they sit on, they are ordered as venvstacks does (C3, like Python's MRO); an order that cannot be kept is an error. Set this or `runtime`.",
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

def _test_layer_impl(ctx):
    return layer_impl(ctx, "test")

def _application_layer_impl(ctx):
    return layer_impl(ctx, "application")

runtime_layer_rule = rule(
    implementation = _runtime_layer_impl,
    doc = "A python-build-standalone CPython, optionally with packages installed into it. Use the `runtime_layer` macro.",
    attrs = COMMON_ATTRS | {
        "python": attr.string(mandatory = True, doc = "CPython version: `3.Y` (the runtime table's release of it) or an exact `3.Y.Z`."),
        "runtime_archive": attr.label(
            allow_single_file = [".tar.gz"],
            doc = "A python-build-standalone `install_only` archive to use instead of the table's, usually a `select()` over the `@rules_venvstacks//platforms:is_<name>` settings of `http_file`s declared in MODULE.bazel (for a release the table does not know). Its version is `python` when exact, else the one its file name says.",
        ),
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

test_layer_rule = rule(
    implementation = _test_layer_impl,
    doc = "A test-only layer over an application (e.g. pytest): locked like any layer, never published. Use the `stack_pytest` macro.",
    attrs = COMMON_ATTRS | {
        "app": attr.label(mandatory = True, providers = [LayerInfo], doc = "The application layer the tests run against."),
    },
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
    provides = [LayerInfo],
)
