"""Public API of rules_venvstacks: layered Python environments as Bazel targets.

```starlark
load("@rules_venvstacks//rules:defs.bzl", "application_layer", "framework_layer", "runtime_layer", "stack_lock")

runtime_layer(name = "cpython3_11", python = "3.11")
framework_layer(name = "mlx", runtime = ":cpython3_11", requirements = ["mlx==0.32.4"])
application_layer(name = "mlx_app", frameworks = [":mlx"], launch_module = "report_mlx_version.py")
stack_lock(name = "lock", layers = [":mlx_app"])
```

Each layer macro makes two targets: `<name>` (build: the layer's archive, metadata and SBOM, and those of the layers
below it, with the output groups `archives`, `metadata`, `sboms` and `trees`, the last one the layers as directories,
built only when asked for; run: deploy the stack and start the layer) and `<name>_test` (deploy and check the
stack; it runs when the target platform is the host's, or with `--@rules_venvstacks//platforms:test_foreign_platforms`
on executors of the target platform, and is skipped as incompatible otherwise).
"""

load("@bazel_skylib//lib:selects.bzl", "selects")
load("@venvstacks_hub//:layers.bzl", "LOCKED_LAYERS", "LOCK_SETTINGS")
load("//platforms:platforms.bzl", "TARGET_PLATFORMS")
load(
    "//rules/private:layer.bzl",
    "ENV_NAME_PREFIX",
    "layer_key",
    "pylock_name",
    _application_layer_rule = "application_layer_rule",
    _framework_layer_rule = "framework_layer_rule",
    _runtime_layer_rule = "runtime_layer_rule",
    _test_layer_rule = "test_layer_rule",
)
load("//rules/private:layer_test.bzl", _layer_test = "layer_test")
load("//rules/private:stack_bundle.bzl", _stack_bundle = "stack_bundle")
load("//rules/private:stack_image.bzl", _stack_image_rule = "stack_image_rule")
load("//rules/private:stack_lock.bzl", _stack_lock = "stack_lock", _stack_lock_test = "stack_lock_test")
load("//rules/private:stack_pytest.bzl", _stack_pytest_test = "stack_pytest_test")
load("//rules/private:stack_report.bzl", _stack_report = "stack_report")

stack_bundle = _stack_bundle
layer_test = _layer_test
stack_lock_rule = _stack_lock
stack_lock_test = _stack_lock_test
stack_pytest_test = _stack_pytest_test
stack_report = _stack_report
test_layer_rule = _test_layer_rule

# The rules behind the layer macros, for tests and tooling: no `<name>_test` target, and `lock`/`pylock` are not
# filled in from the lock index.
runtime_layer_rule = _runtime_layer_rule
framework_layer_rule = _framework_layer_rule
application_layer_rule = _application_layer_rule

def _lock_attrs(name, kind):
    """The hub entry and pylock file of a layer, when the lock index has them.

    While a stack is being locked, the layer sees its entry without any platform's wheels: locking needs no wheel,
    so none is downloaded (a CUDA framework's gigabytes stay where they are).
    """
    hub_target = LOCKED_LAYERS.get(layer_key(native.package_name(), name))
    lock = select({
        Label("//platforms:is_locking"): Label("@venvstacks_hub//:{}.elsewhere".format(hub_target)),
        "//conditions:default": Label("@venvstacks_hub//:" + hub_target),
    }) if hub_target else None
    return {
        "lock": lock,
        "pylock": native.glob([pylock_name(ENV_NAME_PREFIX[kind] + name)], allow_empty = True),
    }

def _buildable_for(name, platforms):
    """`target_compatible_with` of a layer built only for `platforms` (any of them; or while it is being locked)."""
    for platform in platforms:
        if platform not in TARGET_PLATFORMS:
            fail("//{}:{}: unknown platform {}; supported: {}".format(native.package_name(), name, repr(platform), ", ".join(sorted(TARGET_PLATFORMS))))
    selects.config_setting_group(
        name = name + "_platforms",
        match_any = [Label("//platforms:is_" + p) for p in platforms] + [Label("//platforms:is_locking")],
        visibility = ["//visibility:private"],
    )
    return select({
        ":" + name + "_platforms": [],
        "//conditions:default": [Label("@platforms//:incompatible")],
    })

def _layer(rule, kind, name, test_kwargs, kwargs):
    """Declares the layer rule with its lock entry, and its test (with `check_imports` and `skip_imports`).

    `platforms = []` disables the layer (as in venvstacks); a layer with `platforms` is incompatible with (skipped
    on) other target platforms, and so is every layer over it."""
    platforms = kwargs.pop("platforms", None)
    test_kwargs = test_kwargs | {"imports": kwargs.pop("check_imports", []), "skip_imports": kwargs.pop("skip_imports", [])}
    disabled = platforms == []
    compatible = kwargs.pop("target_compatible_with", [])
    if platforms:
        compatible = _buildable_for(name, platforms) + compatible
    rule(
        name = name,
        disabled = disabled,
        platforms = platforms or [],
        target_compatible_with = compatible,
        **(kwargs | _lock_attrs(name, kind))
    )
    _layer_test(
        name = name + "_test",
        layer = ":" + name,
        tags = kwargs.get("tags", []),
        target_compatible_with = [Label("@platforms//:incompatible")] if disabled else select({
            Label("//platforms:layer_tests_can_run"): [],
            "//conditions:default": [Label("@platforms//:incompatible")],
        }),
        testonly = True,
        visibility = kwargs.get("visibility"),
        **test_kwargs
    )

def runtime_layer(name, python, **kwargs):
    """A runtime layer: a python-build-standalone CPython, optionally with packages installed into it.

    Args:
      name: target name; also the layer's directory name when deployed.
      python: CPython version `3.Y` or an exact `3.Y.Z` (rules/private/pbs_runtimes.json lists the archives known
        per platform; `runtime_archive` gives one it does not know).
      **kwargs: requirements, platforms (`[]` disables the layer), versioned, runtime_archive, linux_target,
        macosx_target, archive_format, dynlib_exclude, check_imports and skip_imports (for `<name>_test`: modules
        to import besides, or instead of, the packages' top-level modules), and the common attributes (visibility,
        tags, ...). See runtime_layer_rule.
    """
    _layer(_runtime_layer_rule, "runtime", name, {}, kwargs | {"python": python})

def framework_layer(name, **kwargs):
    """A framework layer: a virtual environment of big shared dependencies, over a runtime or other frameworks.

    Args:
      name: target name; deployed as `framework-<name>`.
      **kwargs: runtime or frameworks, requirements, platforms (`[]` disables the layer), versioned,
        linux_target, macosx_target, archive_format, dynlib_exclude, check_imports, skip_imports, and the common
        attributes. See framework_layer_rule.
    """
    _layer(_framework_layer_rule, "framework", name, {}, kwargs)

def _check_source_file(name, attribute, path):
    """Fails now (not at execution) when a plain file name of this package does not exist."""
    if type(path) == "string" and not path.startswith((":", "//", "@")) and not native.glob([path], allow_empty = True):
        fail("//{}:{}: {} {} does not exist in {}/; add the file or fix the name".format(
            native.package_name(),
            name,
            attribute,
            repr(path),
            native.package_name() or "the workspace root",
        ))

def application_layer(name, launch_module, check_args = [], **kwargs):
    """An application layer: a thin virtual environment with a launch module, over frameworks or a runtime.

    Args:
      name: target name; deployed as `app-<name>`.
      launch_module: one .py file, or the files of a package directory, run with `python -m`.
      check_args: arguments for the launch module when `<name>_test` starts it.
      **kwargs: frameworks or runtime, requirements, support_modules, platforms (`[]` disables the layer),
        versioned, linux_target, macosx_target, archive_format, dynlib_exclude, check_imports, skip_imports, and
        the common attributes. See application_layer_rule.
    """
    _check_source_file(name, "launch_module", launch_module)
    for module in kwargs.get("support_modules", []):
        _check_source_file(name, "support_modules", module)
    _layer(_application_layer_rule, "application", name, {"launch_args": check_args}, kwargs | {"launch_module": launch_module})

def stack_lock(name, layers, exclude_newer = "", **kwargs):
    """Locks layers: `bazel run :<name>` resolves each listed layer (and every layer below it) with uv.

    Writes `pylock.<env_name>.toml` per layer and `venvstacks_lock.json` (the index MODULE.bazel registers with
    `venvstacks.lock_file`) into this package. `<name>_test` fails while the lock is stale, naming the command to run.

    Args:
      name: target name.
      layers: the layers to lock (usually the applications); the layers below them are locked too, disabled ones
        (`platforms = []`) are left out.
      exclude_newer: lock as if no release after this time existed (`2025-06-30` or an RFC 3339 time), as uv's
        `--exclude-newer`; recorded in the index, so every relock uses it.
      **kwargs: the common attributes (visibility, tags, ...).
    """
    others = [r["name"] for r in native.existing_rules().values() if r["kind"] == "stack_lock"]
    if others:
        fail("//{}:{}: //{}:{} already locks into this package (its venvstacks_lock.json); one stack_lock per package: list these layers there, or put this one in another package".format(
            native.package_name(),
            name,
            native.package_name(),
            others[0],
        ))
    _stack_lock(name = name, layers = layers, exclude_newer = exclude_newer, **kwargs)
    recorded = LOCK_SETTINGS.get("//{}:{}".format(native.package_name(), name))
    _stack_lock_test(
        name = name + "_test",
        lock = ":" + name,
        layers = layers,
        exclude_newer = exclude_newer,
        recorded_exclude_newer = recorded["exclude_newer"] if recorded else "",
        locked = recorded != None,
        tags = kwargs.get("tags", []),
        visibility = kwargs.get("visibility"),
    )

def stack_pytest(name, app, srcs, requirements = ["pytest"], data = [], **kwargs):
    """pytest on `srcs` against the deployed stack of `app`: the tests import exactly what ships.

    pytest (and `requirements`) come from a test-only layer over the application, `<name>_layer`, which is locked
    like any layer (list `:<name>_layer` in the stack_lock's `layers`) and never published with the application.
    The test runs where the application's own test does (the target platform is the host's, or with
    `--@rules_venvstacks//platforms:test_foreign_platforms`); failures reach Bazel as JUnit XML.

    Args:
      name: the test's name.
      app: the application layer to test.
      srcs: the test sources (`test_*.py`).
      requirements: what the tests need beyond the stack (pytest and its plugins).
      data: files the tests read (conftest.py, fixtures...).
      **kwargs: the common test attributes (size, tags, args, ...), `module` (another test runner than pytest) and
        `module_args`. See stack_pytest_test.
    """
    _test_layer_rule(
        name = name + "_layer",
        app = app,
        requirements = requirements,
        tags = ["manual"],
        **_lock_attrs(name + "_layer", "test")
    )
    _stack_pytest_test(
        name = name,
        layer = ":" + name + "_layer",
        srcs = srcs,
        data = data,
        target_compatible_with = select({
            Label("//platforms:layer_tests_can_run"): [],
            "//conditions:default": [Label("@platforms//:incompatible")],
        }),
        **kwargs
    )

def stack_image(name, app, base = None, **kwargs):
    """A container image of an application: an OCI image layout whose layers are the stack's layers.

    `bazel build :<name>` writes the layout directory `<name>/` (index.json, oci-layout, blobs/); `:<name>.tar`
    is the same layout as one tar file (`<name>.oci.tar`: `skopeo copy oci-archive:`, `podman load`,
    `docker load`). One OCI layer per stack layer, lowest first (the runtime, the frameworks, the application),
    over the layers of `base`; the stack is deployed at `/opt/venvstacks` with postinstall already applied; the
    entrypoint runs the launch module (`/opt/venvstacks/<app>/bin/python -m <module>`); the config carries `Env`
    (`PATH` first), labels with each layer's install target, lock version and requirements hash, and the target
    platform (linux_x86_64: amd64, linux_aarch64: arm64) as the image's platform. A layer's OCI blob depends on
    that layer only, so the images of two applications share their runtime and framework blobs (same digests).
    Linux target platforms only (the target is incompatible elsewhere); any host builds them. See docs/images.md.

    Args:
      name: target name; also the layout directory's name.
      app: the application layer the image runs.
      base: an OCI image layout of the target platform to put the stack on, for the system libraries and shell
        the stack needs at run time (glibc, bash): a directory target (rules_oci's `oci_image`, `oci_pull`) or a
        filegroup of a layout's files.
      **kwargs: `tag` (the image's name in index.json, default `latest`), `env` (variables to add to `Env`),
        `cmd` (default arguments of the launch module), and the common attributes (visibility, tags, ...).
    """
    compatible = kwargs.pop("target_compatible_with", [])
    _stack_image_rule(
        name = name,
        app = app,
        base = base,
        target_compatible_with = [Label("@platforms//os:linux")] + compatible,
        **kwargs
    )
    native.filegroup(
        name = name + ".tar",
        srcs = [":" + name],
        output_group = "tarball",
        tags = kwargs.get("tags", []),
        visibility = kwargs.get("visibility"),
    )
