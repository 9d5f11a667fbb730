"""The `venvstacks` module extension: repositories for every wheel and runtime the lock indexes name.

Reads each lock index (JSON written by a stack_lock target) and declares one repository per wheel (by sha256,
shared by all layers and platforms), one per runtime archive (Python version x platform), the hub that maps layers
to them per platform, and the helper tool's toolchains. Repositories are fetched only when a build needs them,
so a build for one platform downloads only that platform's wheels.

Nothing in an index stops the extension: an index it cannot read, or a layer in two indexes, becomes a problem the
affected layers report when they are built, so the lock targets (which rewrite the indexes) always run.
"""

load("//platforms:platforms.bzl", "TARGET_PLATFORMS")
load(":hub_repo.bzl", "hub_repo", "toolchains_repo")
load(":runtime_repo.bzl", "runtime_repo")
load(":wheel_repo.bzl", "tool_wheel_repo", "wheel_repo")

def _repo_name(text):
    return "".join([c if c.isalnum() else "_" for c in text.elems()])

def _wheel_repo_name(wheel):
    return "whl_{}_{}".format(_repo_name(wheel["name"]), wheel["sha256"][:12])

def _runtime_repo_name(python, platform):
    return "cpython_{}_{}".format(_repo_name(python), platform)

def _declare_runtime(pbs, name, python, version, platform):
    """A runtime repository: the table's release of `python` (X.Y), or the exact `version` (X.Y.Z) when given."""
    entry = pbs["pythons"].get(python, {})
    known = entry.get("version") == version or not version
    runtime_repo(
        name = name,
        base_url = pbs["base_url"],
        exact = bool(version),
        known_pythons = sorted([entry["version"] for entry in pbs["pythons"].values()]),
        platform = platform,
        python = python,
        release = entry.get("release", "") if known else "",
        sha256 = entry.get("sha256", {}).get(platform, "") if known else "",
        triple = pbs["triples"][platform],
        version = version or entry.get("version", python),
    )

def _index_name(tag):
    return "//{}:{}".format(tag.path.package, tag.path.name)

def _read_index(mctx, tag, version):
    """(index, problem): the decoded index, or None and why it cannot be used."""
    name = _index_name(tag)
    path = mctx.path(tag.path)
    if not path.exists:
        return None, None  # not locked yet: its layers fail to build with a message saying to run the lock target
    index = json.decode(mctx.read(path), default = None)
    if type(index) != "dict" or type(index.get("layers")) != "dict":
        return None, "{} is not a lock index (not JSON, or no `layers`): `bazel run` the stack_lock target of //{} again".format(name, tag.path.package)
    if index.get("version") != version:
        return None, "{} has index version {}, this rules_venvstacks reads version {}: run `bazel run {}`".format(
            name,
            index.get("version"),
            version,
            index.get("lock", "<its stack_lock target>"),
        )
    return index, None

def _entry_problem(entry, schema):
    """What a layer entry of an index lacks that the extension reads (the schema's required fields), or None."""
    layer = schema["$defs"]["layer"]
    missing = [field for field in layer["required"] if field not in entry]
    if not missing and type(entry["wheels"]) == "dict":
        wheel_fields = layer["properties"]["wheels"]["additionalProperties"]["items"]["required"]
        missing = [f for ws in entry["wheels"].values() for w in ws for f in wheel_fields if f not in w][:1]
    if not missing and type(entry["inputs"]) == "dict":
        missing = ["inputs." + f for f in ("kind", "python") if f not in entry["inputs"]]
    return ", ".join(missing) if missing else None

def _read_indexes(mctx):
    """(key -> struct(entry, lock, path) for every usable layer entry, [problem], {key: problem}, {lock: settings})."""
    schema = json.decode(mctx.read(Label("//python:stacktool/schemas/lock-index.schema.json")))
    version = schema["properties"]["version"]["const"]
    layers, index_problems, layer_problems, settings = {}, [], {}, {}
    for mod in mctx.modules:
        for tag in mod.tags.lock_file:
            index, problem = _read_index(mctx, tag, version)
            if problem:
                index_problems.append(problem)
            if not index:
                continue
            settings[index["lock"]] = {"exclude_newer": index["exclude_newer"]}
            name = _index_name(tag)
            for key, entry in index["layers"].items():
                missing = _entry_problem(entry, schema)
                if missing:
                    layer_problems[key] = "the entry of //{} in {} lacks {}: `bazel run {}` to write it again".format(key, name, missing, index["lock"])
                    continue
                if key in layers or key in layer_problems:
                    first = layers.pop(key).path if key in layers else "another index"
                    layer_problems[key] = "//{} is in two lock indexes ({} and {}); keep it in one stack_lock".format(key, first, name)
                    continue
                layers[key] = struct(entry = entry, lock = index["lock"], path = name)
    return layers, index_problems, layer_problems, settings

def _venvstacks_impl(mctx):
    pbs = json.decode(mctx.read(Label("//rules/private:pbs_runtimes.json")))
    tools = json.decode(mctx.read(Label("//rules/private:tool_wheels.json")))
    layers, index_problems, layer_problems, settings = _read_indexes(mctx)
    indexes = _indexes(mctx)

    wheels = {}  # repo name -> struct(wheel, pythons, lock)
    runtimes = {}  # repo name -> (python, exact version or "", platform)
    hub = {}
    for key, layer in layers.items():
        entry = layer.entry
        python = entry["inputs"]["python"]
        python_version = entry["inputs"].get("python_version", "")
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
                repo = _runtime_repo_name(python_version or python, platform)
                runtimes[repo] = (python, python_version, platform)
                platforms[platform] |= {"runtime_archive": "@{}//:runtime.tar.gz".format(repo), "runtime_source": "@{}//:runtime.json".format(repo)}
        hub[key] = {
            "inputs": json.encode(entry["inputs"]),
            "install_target": entry["install_target"],
            "lock_label": layer.lock,
            "lock_version": entry["lock_version"],
            "locked_at": entry["locked_at"],
            "platforms": platforms,
            "pylock_sha256": entry["pylock_sha256"],
            "requirements_files": entry["requirements_files"],
            "requirements_hash": entry["requirements_hash"],
        }

    for name, wheel in wheels.items():
        index = indexes.get(wheel.wheel["index"], {})
        wheel_repo(
            name = name,
            filename = wheel.wheel["filename"],
            location = index["location"] if index.get("flat") else "",
            locked_by = wheel.lock,
            pythons = sorted(wheel.pythons),
            sha256 = wheel.wheel["sha256"],
            urls = [wheel.wheel["url"]] if wheel.wheel["url"] else [],
        )
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

        # The tool's interpreter comes from the same repository as a runtime layer of that Python and platform.
        runtime = _runtime_repo_name(tools["python"], platform)
        runtimes.setdefault(runtime, (tools["python"], "", platform))
        uv = [r for r, w in zip(repos, tool_wheels) if w["name"] == "uv"]
        toolchains[platform] = {
            "constraints": TARGET_PLATFORMS[platform].constraints,
            "os": TARGET_PLATFORMS[platform].os,
            "python": tools["python"],
            "runtime": runtime,
            "uv": uv[0],
            "wheels": [r for r, w in zip(repos, tool_wheels) if w["name"] != "uv"],
        }
    for repo, (python, python_version, platform) in runtimes.items():
        _declare_runtime(pbs, repo, python, python_version, platform)

    hub_repo(
        name = "venvstacks_hub",
        index_problems = index_problems,
        indexes = json.encode(indexes),
        layer_problems = layer_problems,
        layers = json.encode(hub),
        lock_settings = json.encode(settings),
    )
    toolchains_repo(name = "venvstacks_toolchains", platforms = json.encode(toolchains))
    return mctx.extension_metadata(reproducible = True)

MIRRORS_ENV = "VENVSTACKS_INDEX_MIRRORS"

def _mirrors(mctx):
    """VENVSTACKS_INDEX_MIRRORS (`name=<directory or URL>,...`): index name -> URL of a flat directory of wheels."""
    mirrors = {}
    for item in [i.strip() for i in mctx.getenv(MIRRORS_ENV, "").split(",") if i.strip()]:
        name, _, where = item.partition("=")
        mirrors[name.strip()] = where.strip() if "://" in where else "file://" + where.strip()
    return mirrors

def _root_directory(mctx):
    """The root module's workspace directory, found from one of its lock_file tags (or None without one)."""
    for mod in [m for m in mctx.modules if m.is_root]:
        for tag in mod.tags.lock_file:
            directory = mctx.path(tag.path).dirname
            for _ in tag.path.package.split("/") if tag.path.package else []:
                directory = directory.dirname
            return directory
    return None

def _indexes(mctx):
    """The package indexes the root module declares, as uv reaches them on this machine.

    Returns name -> dict(url, default, explicit, flat, location), in declaration order. `location` is what uv and
    the downloads use here: the mirror VENVSTACKS_INDEX_MIRRORS names, the absolute URL of a local directory, or the
    URL. A mirror of PyPI (`pypi=...`) adds PyPI as a declared default index.
    """
    root = _root_directory(mctx)
    mirrors = _mirrors(mctx)
    indexes = {}
    for mod in [m for m in mctx.modules if m.is_root]:
        for tag in mod.tags.index:
            if tag.name in indexes:
                fail("MODULE.bazel declares package index {} twice; give each venvstacks.index its own name".format(repr(tag.name)))
            local = "://" not in tag.url
            if local and not root:
                fail("venvstacks.index {} is a directory of the workspace: declare a `venvstacks.lock_file` too, so the extension knows where the workspace is".format(repr(tag.name)))
            location = mirrors.get(tag.name) or ("file://" + str(root.get_child(tag.url)) if local else tag.url)
            indexes[tag.name] = {
                "default": tag.default,
                "explicit": tag.explicit,
                "flat": local or tag.flat or tag.name in mirrors,
                "location": location,
                "url": tag.url,
            }
    defaults = [n for n, i in indexes.items() if i["default"]]
    if len(defaults) > 1:
        fail("MODULE.bazel declares more than one default package index ({}); keep `default = True` on one".format(", ".join(defaults)))
    if "pypi" in mirrors and not defaults and "pypi" not in indexes:
        indexes["pypi"] = {"default": True, "explicit": False, "flat": True, "location": mirrors["pypi"], "url": "https://pypi.org/simple"}
    return indexes

_index = tag_class(
    doc = "A package index layers lock from (the root module's only). Layers send packages to it with `package_indexes`, or put it first with `priority_indexes`; locks record each wheel's index by name, so `VENVSTACKS_INDEX_MIRRORS=<name>=<directory or URL>,...` (in the environment, or `--repo_env`) can serve its wheels from a flat directory elsewhere at lock and fetch time (air-gapped CI, local wheel directories; `pypi=...` mirrors the default index).",
    attrs = {
        "default": attr.bool(doc = "Replaces PyPI as the default index."),
        "explicit": attr.bool(doc = "Used only for the packages a layer's `package_indexes` sends to it (like uv's `explicit`), e.g. the PyTorch CPU index."),
        "flat": attr.bool(doc = "The URL is a flat directory of wheels (find-links style) rather than a PEP 503 simple index. A `url` without a scheme is always one."),
        "name": attr.string(mandatory = True, doc = "The index's name, used by `package_indexes`, `priority_indexes`, `index_overrides` and in locks."),
        "url": attr.string(mandatory = True, doc = "The index URL (`https://download.pytorch.org/whl/cpu`), or a directory of wheels relative to the workspace root (`third_party/wheels`): its wheels are locked by file name, never by a path of the machine that locked them."),
    },
)

_lock_file = tag_class(
    doc = "A lock index written by a `stack_lock` target (`bazel run` it to create or update the file).",
    attrs = {
        "path": attr.label(mandatory = True, doc = "The index, e.g. `//stacks:venvstacks_lock.json`. It may not exist yet."),
    },
)

venvstacks = module_extension(
    implementation = _venvstacks_impl,
    doc = "Declares the wheel, runtime, hub and toolchain repositories of rules_venvstacks.",
    tag_classes = {"index": _index, "lock_file": _lock_file},
    environ = [MIRRORS_ENV],
)
