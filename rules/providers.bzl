"""Providers of rules_venvstacks, all declared here."""

TargetPlatformInfo = provider(
    doc = "The target platform a layer is built for, by its venvstacks name.",
    fields = {
        "name": "Platform name such as `linux_x86_64` or `win_amd64`; empty when the target platform is not supported.",
    },
)

LayerInfo = provider(
    doc = "A runtime, framework or application layer: what it asks for (its spec) and what it builds.",
    fields = {
        "key": "`package:name` of the layer's target; the key of its entry in the lock index.",
        "kind": "`runtime`, `framework` or `application`.",
        "env_name": "The layer's name: `framework-<name>`, `app-<name>`, or the runtime's name.",
        "disabled": "True for a layer with `platforms = []` (never locked or built); its other fields are then None.",
        "install_target": "Directory name of the deployed layer: env_name, with `@<lock version>` for a versioned layer.",
        "spec": "dict: the layer's lock inputs, exactly as stack_lock writes them (a LayerSpec of python/stacktool/contract.py).",
        "runtime": "LayerInfo of the runtime layer at the bottom of this layer's stack (None for a runtime).",
        "frameworks": "list of LayerInfo: the framework layers below this one, in C3 order (nearest first).",
        "lower": "list of LayerInfo: every layer below this one: `frameworks`, then the runtime.",
        "lock_problem": "Why the layer cannot be built from its lock for the target platform (a message naming the fix), or None.",
        "locked_files": "list of struct(file, sha256, path): the files the layer's lock covers (its pylock file, its requirements files) with their sha256 when locked; empty until locked.",
        "runtime_record": "File: the RuntimeRecord (JSON, python/stacktool/contract.py) the runtime layer of this stack publishes for the layers above it.",
        "venv_files": "File (directory): the files every virtual environment over that runtime starts with (its Windows venv launchers, the POSIX bin/python wrapper).",
        "tree": "File (directory): the installed layer, built only for the `trees` output group.",
        "archive": "File: the layer's published archive.",
        "metadata": "File: the layer's metadata JSON (schema: python/stacktool/schemas/layer-metadata.schema.json).",
        "sbom": "File: the layer's SBOM, CycloneDX 1.6 JSON (`<install_target>-<platform>.cdx.json`, next to the metadata): its packages with purl and wheel sha256, its runtime, its lower layers (docs/reports.md).",
        "deploy_metadata": "list of File: metadata of the runtime, the lower layers bottom-up, then this layer.",
    },
)

LockedLayerInfo = provider(
    doc = "What the lock index says about one layer for the configured target platform (from the hub repository).",
    fields = {
        "lock_label": "The stack_lock target that wrote the entry.",
        "inputs": "dict: the layer's spec at lock time; the layer is stale when its spec differs.",
        "pylock_sha256": "sha256 of the layer's pylock.<env>.toml when it was locked.",
        "install_target": "The layer's deployed name from the lock: env_name, or env_name@<lock_version> for a versioned layer.",
        "lock_version": "int: the layer's lock version (1 unless versioned).",
        "locked_at": "UTC time (ISO 8601) the layer's lock last changed.",
        "requirements_hash": "`sha256:<hex>` of what the layer installs on each of its platforms.",
        "requirements_files": "dict: workspace path -> sha256 of each requirements file when the layer was locked.",
        "platform": "The target platform's name when the lock covers it, else an empty string.",
        "wheels": "list of struct(name, version, filename, sha256, tree), by name: installed wheel trees for this platform.",
        "runtime_archive": "File: the python-build-standalone archive, for runtime layers (else None).",
        "runtime_source": "File: runtime.json (a RuntimeSource: file, origin, python_version, sha256) of that archive, for runtime layers (else None).",
    },
)

StackToolInfo = provider(
    doc = "The helper tool (python/stacktool) and the interpreter that runs it on the exec platform.",
    fields = {
        "runtime": "File, a directory: the interpreter's installation (python-build-standalone for the exec platform, its standard library zipped).",
        "interpreter": "string: the interpreter's path below `runtime` (`bin/python3.11`, `python.exe`).",
        "entry": "File: python/run_stacktool.py.",
        "sys_path": "list of File: the tool's dependencies on sys.path: the zip of its pure-Python dependencies, or a marker file whose directory holds an unpacked wheel with extension modules.",
        "files": "depset of File: everything an action running the tool needs.",
    },
)

StackToolEnvironmentInfo = provider(
    doc = "What the helper tool runs with on one exec platform (a `stacktool_environment` target).",
    fields = {
        "runtime": "File, a directory: as StackToolInfo.runtime.",
        "interpreter": "string: as StackToolInfo.interpreter.",
        "sys_path": "list of File: as StackToolInfo.sys_path.",
        "files": "depset of File: `runtime`, the sys_path entries and the files of the unpacked wheels.",
    },
)

StackBundleInfo = provider(
    doc = "A stack_bundle: its layers' published files for each of its platforms, and the manifest that lists them.",
    fields = {
        "manifest": "File: `<name>/manifest.json`, per platform the metadata files in deploy order (lowest layer first).",
        "files": "depset of File: the manifest, and every layer's archive, metadata and SBOM beside it.",
    },
)
