"""Providers of rules_venvstacks, all declared here."""

TargetPlatformInfo = provider(
    doc = "The target platform a layer is built for, by its venvstacks name.",
    fields = {
        "name": "Platform name such as `linux_x86_64` or `win_amd64`; empty when the target platform is not supported.",
    },
)
