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
        "env_name": "Directory name of the deployed layer (`framework-<name>`, `app-<name>`, or the runtime's name).",
        "spec": "dict: the layer's lock inputs, exactly as stack_lock writes them (see python/stacktool/spec.py).",
        "runtime": "LayerInfo of the runtime layer at the bottom of this layer's stack (None for a runtime).",
        "lower": "list of LayerInfo: every layer below this one, nearest first, the runtime last.",
        "runtime_record": "File: the RuntimeRecord (JSON, python/stacktool/contract.py) the runtime layer of this stack publishes for the layers above it.",
        "venv_files": "File (directory): the files every virtual environment over that runtime starts with (its Windows venv launchers, the POSIX bin/python wrapper).",
        "tree": "File (directory): the installed layer.",
        "archive": "File: the layer's published archive.",
        "metadata": "File: the layer's metadata JSON (schema: python/stacktool/schemas/layer-metadata.schema.json).",
        "deploy_metadata": "list of File: metadata of the runtime, the lower layers bottom-up, then this layer.",
    },
)

LockedLayerInfo = provider(
    doc = "What the lock index says about one layer for the configured target platform (from the hub repository).",
    fields = {
        "lock_label": "The stack_lock target that wrote the entry.",
        "inputs": "dict: the layer's spec at lock time; the layer is stale when its spec differs.",
        "pylock_sha256": "sha256 of the layer's pylock.<env>.toml when it was locked.",
        "platform": "The target platform's name when the lock covers it, else an empty string.",
        "wheels": "list of struct(name, version, filename, sha256, tree), by name: installed wheel trees for this platform.",
        "runtime_archive": "File: the python-build-standalone archive, for runtime layers (else None).",
        "runtime_source": "File: runtime.json (a RuntimeSource: file, origin, python_version, sha256) of that archive, for runtime layers (else None).",
    },
)

StackToolInfo = provider(
    doc = "The helper tool (python/stacktool) and the interpreter that runs it on the exec platform.",
    fields = {
        "interpreter": "File: the Python interpreter (python-build-standalone for the exec platform).",
        "entry": "File: python/run_stacktool.py.",
        "sys_path": "list of File: the tool's dependencies on sys.path: a pure wheel itself, or a marker file whose directory holds an unpacked wheel.",
        "uv": "File: the uv binary (for locking).",
        "files": "depset of File: everything an action running the tool needs.",
    },
)
