"""The `venvstacks` module extension: repositories for every wheel and runtime the lock indexes name.

Reads each lock index (JSON written by a stack_lock target) and declares one repository per wheel (by sha256,
shared by all layers and platforms), one per runtime archive (Python version x platform), the hub that maps layers
to them per platform, and the helper tool's toolchains. Repositories are fetched only when a build needs them,
so a build for one platform downloads only that platform's wheels.
"""

load("//platforms:platforms.bzl", "TARGET_PLATFORMS")
load(":hub_repo.bzl", "hub_repo", "toolchains_repo")
load(":runtime_repo.bzl", "runtime_repo")
load(":wheel_repo.bzl", "tool_wheel_repo", "wheel_repo")

INDEX_VERSION = 1

def _repo_name(text):
    return "".join([c if c.isalnum() else "_" for c in text.elems()])

def _wheel_repo_name(wheel):
    return "whl_{}_{}".format(_repo_name(wheel["name"]), wheel["sha256"][:12])

def _runtime_repo_name(python, platform, tool = False):
    return "cpython_{}_{}{}".format(_repo_name(python), platform, "_tool" if tool else "")

def _declare_runtime(pbs, python, platform, tool):
    entry = pbs["pythons"].get(python)
    if entry == None:
        fail("no python-build-standalone runtime is known for Python {} (known: {})".format(python, ", ".join(pbs["pythons"])))
    runtime_repo(
        name = _runtime_repo_name(python, platform, tool),
        base_url = pbs["base_url"],
        platform = platform,
        python = python,
        release = entry["release"],
        sha256 = entry["sha256"].get(platform, ""),
        tool = tool,
        triple = pbs["triples"][platform],
        version = entry["version"],
    )

def _read_indexes(mctx):
    """Returns key -> struct(entry, lock, path) for every layer of the lock indexes that exist yet."""
    layers = {}
    for mod in mctx.modules:
        for tag in mod.tags.lock_file:
            path = mctx.path(tag.path)
            if not path.exists:
                continue  # not locked yet: its layers fail to build with a message saying to run the lock target
            index = json.decode(mctx.read(path))
            if index.get("version") != INDEX_VERSION:
                fail("{} has index version {}, this rules_venvstacks reads version {}: run `bazel run {}`".format(
                    tag.path,
                    index.get("version"),
                    INDEX_VERSION,
                    index.get("lock", "<the stack_lock target>"),
                ))
            for key, entry in index["layers"].items():
                if key in layers:
                    fail("layer //{} is in two lock indexes ({} and {}); keep it in one stack_lock".format(key, layers[key].path, tag.path))
                layers[key] = struct(entry = entry, lock = index["lock"], path = str(tag.path))
    return layers

def _venvstacks_impl(mctx):
    pbs = json.decode(mctx.read(Label("//rules/private:pbs_runtimes.json")))
    tools = json.decode(mctx.read(Label("//rules/private:tool_wheels.json")))
    layers = _read_indexes(mctx)

    wheels = {}  # repo name -> struct(wheel, pythons, lock)
    runtimes = {}  # (python, platform) -> True
    hub = {}
    for key, layer in layers.items():
        entry = layer.entry
        python = entry["inputs"]["python"]
        platforms = {}
        for platform, platform_wheels in entry["wheels"].items():
            installed = {}
            for wheel in platform_wheels:
                name = _wheel_repo_name(wheel)
                if name not in wheels:
                    wheels[name] = struct(wheel = wheel, pythons = {}, lock = layer.lock)
                wheels[name].pythons[python] = True
                installed["@{}//:installed_{}".format(name, _repo_name(python))] = json.encode(
                    {k: wheel[k] for k in ("name", "version", "filename", "sha256")},
                )
            platforms[platform] = {"wheels": installed}
            if entry["inputs"]["kind"] == "runtime":
                runtimes[(python, platform)] = True
                repo = _runtime_repo_name(python, platform)
                platforms[platform] |= {"runtime_archive": "@{}//:runtime.tar.gz".format(repo), "runtime_source": "@{}//:runtime.json".format(repo)}
        hub[key] = {
            "inputs": json.encode(entry["inputs"]),
            "lock_label": layer.lock,
            "platforms": platforms,
            "pylock_sha256": entry["pylock_sha256"],
        }

    for name, wheel in wheels.items():
        wheel_repo(
            name = name,
            filename = wheel.wheel["filename"],
            locked_by = wheel.lock,
            pythons = sorted(wheel.pythons),
            sha256 = wheel.wheel["sha256"],
            urls = [wheel.wheel["url"]],
        )
    for python, platform in runtimes:
        _declare_runtime(pbs, python, platform, tool = False)

    toolchains = {}
    tool_repos = {}
    for platform, tool_wheels in tools["wheels"].items():
        repos = []
        for wheel in tool_wheels:
            name = "tool_" + _wheel_repo_name(wheel)
            if name not in tool_repos:  # pure-Python wheels serve every platform
                tool_repos[name] = True
                tool_wheel_repo(name = name, filename = wheel["filename"], sha256 = wheel["sha256"], urls = [wheel["url"]])
            repos.append(name)
        _declare_runtime(pbs, tools["python"], platform, tool = True)
        uv = [r for r, w in zip(repos, tool_wheels) if w["name"] == "uv"]
        toolchains[platform] = {
            "constraints": TARGET_PLATFORMS[platform].constraints,
            "runtime": _runtime_repo_name(tools["python"], platform, tool = True),
            "uv": uv[0],
            "wheels": [r for r, w in zip(repos, tool_wheels) if w["name"] != "uv"],
        }

    hub_repo(name = "venvstacks_hub", layers = json.encode(hub))
    toolchains_repo(name = "venvstacks_toolchains", platforms = json.encode(toolchains))
    return mctx.extension_metadata(reproducible = True)

_lock_file = tag_class(
    doc = "A lock index written by a `stack_lock` target (`bazel run` it to create or update the file).",
    attrs = {
        "path": attr.label(mandatory = True, doc = "The index, e.g. `//stacks:venvstacks_lock.json`. It may not exist yet."),
    },
)

venvstacks = module_extension(
    implementation = _venvstacks_impl,
    doc = "Declares the wheel, runtime, hub and toolchain repositories of rules_venvstacks.",
    tag_classes = {"lock_file": _lock_file},
)
