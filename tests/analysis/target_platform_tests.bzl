"""Analysis tests: //platforms:current names the configured target platform."""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")
load("//platforms:platforms.bzl", "TARGET_PLATFORMS")
load("//rules:providers.bzl", "TargetPlatformInfo")

def _platform_name_test_impl(ctx):
    env = analysistest.begin(ctx)
    info = analysistest.target_under_test(env)[TargetPlatformInfo]
    asserts.equals(env, ctx.attr.expected, info.name)
    return analysistest.end(env)

def _make_test(platform):
    return analysistest.make(
        _platform_name_test_impl,
        attrs = {"expected": attr.string()},
        config_settings = {"//command_line_option:platforms": str(Label("//platforms:" + platform))},
    )

# A rule class must be a top-level global of its .bzl file: one per configuration.
_linux_aarch64_test = _make_test("linux_aarch64")
_linux_x86_64_test = _make_test("linux_x86_64")
_macosx_arm64_test = _make_test("macosx_arm64")
_macosx_x86_64_test = _make_test("macosx_x86_64")
_win_amd64_test = _make_test("win_amd64")
_win_arm64_test = _make_test("win_arm64")

_TESTS = {
    "linux_aarch64": _linux_aarch64_test,
    "linux_x86_64": _linux_x86_64_test,
    "macosx_arm64": _macosx_arm64_test,
    "macosx_x86_64": _macosx_x86_64_test,
    "win_amd64": _win_amd64_test,
    "win_arm64": _win_arm64_test,
}

def target_platform_test_suite(name):
    """One analysis test per supported platform, grouped in a test_suite.

    Args:
      name: name of the test_suite.
    """
    if sorted(_TESTS) != sorted(TARGET_PLATFORMS):
        fail("target_platform_tests.bzl: add a test rule for every platform of TARGET_PLATFORMS")
    tests = []
    for platform, test in _TESTS.items():
        test(
            name = "{}_{}".format(name, platform),
            target_under_test = "//platforms:current",
            expected = platform,
        )
        tests.append(":{}_{}".format(name, platform))
    native.test_suite(name = name, tests = tests)
