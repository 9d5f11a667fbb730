"""Analysis tests of the layer rules: the spec they hand to the lock, the layer graph checks, deferred lock errors."""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")
load("//rules:providers.bzl", "LayerInfo")

def _mnemonics(env):
    return sorted([a.mnemonic for a in analysistest.target_actions(env) if a.mnemonic.startswith("Venvstacks")])

def _runtime_spec_test_impl(ctx):
    env = analysistest.begin(ctx)
    info = analysistest.target_under_test(env)[LayerInfo]
    asserts.equals(env, "tests/analysis:runtime", info.spec["key"])
    asserts.equals(env, "runtime", info.env_name)
    asserts.equals(env, "3.12", info.spec["python"])
    asserts.equals(env, ["linux_aarch64", "linux_x86_64", "macosx_arm64", "macosx_x86_64", "win_amd64", "win_arm64"], info.spec["platforms"])
    asserts.equals(env, "glibc@2.28", info.spec["linux_target"])
    asserts.equals(env, "pylock.runtime.toml", info.spec["pylock"])

    # Not locked (this module registers no lock index): building fails with the lock message, in one action.
    asserts.equals(env, ["VenvstacksLockCheck"], _mnemonics(env))
    return analysistest.end(env)

runtime_spec_test = analysistest.make(_runtime_spec_test_impl)

def _framework_spec_test_impl(ctx):
    env = analysistest.begin(ctx)
    info = analysistest.target_under_test(env)[LayerInfo]
    asserts.equals(env, "framework-narrow", info.env_name)
    asserts.equals(env, ["tests/analysis:runtime"], info.spec["lower"])
    asserts.equals(env, ["linux_x86_64", "win_amd64"], info.spec["platforms"])
    asserts.equals(env, "3.12", info.spec["python"])
    asserts.equals(env, "glibc@2.35", info.spec["linux_target"])  # its own
    asserts.equals(env, "13.0", info.spec["macosx_target"])  # the default, as its runtime has none
    return analysistest.end(env)

framework_spec_test = analysistest.make(_framework_spec_test_impl)

def _app_spec_test_impl(ctx):
    env = analysistest.begin(ctx)
    info = analysistest.target_under_test(env)[LayerInfo]
    asserts.equals(env, "app-app", info.env_name)
    asserts.equals(env, ["tests/analysis:upper", "tests/analysis:narrow", "tests/analysis:runtime"], info.spec["lower"])
    asserts.equals(env, ["linux_x86_64", "win_amd64"], info.spec["platforms"])  # inherited from the frameworks
    asserts.equals(env, "glibc@2.35", info.spec["linux_target"])  # inherited from the nearest framework
    suffix = info.metadata.basename[len("app-app"):]  # -<host platform>.json
    names = ["runtime", "framework-narrow", "framework-upper", "app-app"]
    asserts.equals(env, [n + suffix for n in names], [m.basename for m in info.deploy_metadata])
    return analysistest.end(env)

app_spec_test = analysistest.make(_app_spec_test_impl)

def _diamond_test_impl(ctx):
    env = analysistest.begin(ctx)
    info = analysistest.target_under_test(env)[LayerInfo]
    keys = ["tests/analysis:b", "tests/analysis:c", "tests/analysis:d", "tests/analysis:runtime"]
    asserts.equals(env, keys, info.spec["lower"])
    asserts.equals(env, keys[:3], [f.key for f in info.frameworks])
    asserts.equals(env, keys, [below.key for below in info.lower])
    return analysistest.end(env)

diamond_test = analysistest.make(_diamond_test_impl)

def _exact_python_test_impl(ctx):
    env = analysistest.begin(ctx)
    info = analysistest.target_under_test(env)[LayerInfo]
    asserts.equals(env, "3.11", info.spec["python"])
    asserts.equals(env, "3.11.13", info.spec["python_version"])
    asserts.equals(env, True, info.spec["versioned"])
    return analysistest.end(env)

exact_python_test = analysistest.make(_exact_python_test_impl)

def _raised_target_test_impl(ctx):
    env = analysistest.begin(ctx)
    info = analysistest.target_under_test(env)[LayerInfo]
    asserts.equals(env, "glibc@2.35", info.spec["linux_target"])  # its own 2.31 raised to its newest lower layer's
    asserts.equals(env, "13.0", info.spec["macosx_target"])
    return analysistest.end(env)

raised_target_test = analysistest.make(_raised_target_test_impl)

def _failure_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.expect_failure(env, ctx.attr.expected)
    return analysistest.end(env)

failure_test = analysistest.make(
    _failure_test_impl,
    expect_failure = True,
    attrs = {"expected": attr.string(doc = "A substring of the expected error.")},
)

def layer_test_suite(name):
    """Analysis tests of the layer rules (targets are in tests/analysis/BUILD.bazel).

    Args:
      name: name of the test_suite.
    """
    runtime_spec_test(name = name + "_runtime_spec", target_under_test = ":runtime")
    framework_spec_test(name = name + "_framework_spec", target_under_test = ":narrow")
    app_spec_test(name = name + "_app_spec", target_under_test = ":app")
    diamond_test(name = name + "_diamond", target_under_test = ":diamond")
    exact_python_test(name = name + "_exact_python", target_under_test = ":exact")
    raised_target_test(name = name + "_raised_target", target_under_test = ":raised")
    failures = {
        "different_runtimes": ("mixed", "its frameworks sit on different runtimes"),
        "runtime_in_frameworks": ("runtime_as_framework", "is a runtime layer; list framework layers there"),
        "both_runtime_and_frameworks": ("both", "set exactly one of `runtime` (a runtime layer) or `frameworks`"),
        "widened_platforms": ("wider", "`platforms` may only narrow what its lower layers are built for"),
        "unknown_platform": ("unknown_platform", "unknown platform \"plan9_vax\""),
        "c3_conflict": ("c3_conflict", "its frameworks cannot be put in one order (C3): //tests/analysis:x (over //tests/analysis:b, //tests/analysis:c, //tests/analysis:d) puts //tests/analysis:b before //tests/analysis:c, but //tests/analysis:y"),
        "over_disabled": ("over_off", "which is disabled (`platforms = []`)"),
        "bad_python": ("bad_python", "python = \"3.11.x\" is not a CPython version 3.Y or 3.Y.Z"),
    }
    for test, (target, expected) in failures.items():
        failure_test(name = "{}_{}".format(name, test), target_under_test = ":" + target, expected = expected)
    native.test_suite(
        name = name,
        tests = [":{}_{}".format(name, t) for t in ["runtime_spec", "framework_spec", "app_spec", "diamond", "exact_python", "raised_target"] + list(failures)],
    )
