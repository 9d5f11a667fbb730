"""Rule: the layers of a stack built for several target platforms in one build (a split transition)."""

load("//platforms:platforms.bzl", "TARGET_PLATFORMS")
load("//rules:providers.bzl", "LayerInfo")

def _platforms_transition_impl(_settings, attr):
    for platform in attr.platforms:
        if platform not in TARGET_PLATFORMS:
            fail("stack_bundle {}: unknown platform {}; supported: {}".format(repr(attr.name), repr(platform), ", ".join(sorted(TARGET_PLATFORMS))))
    return {
        platform: {"//command_line_option:platforms": str(Label("//platforms:" + platform))}
        for platform in attr.platforms
    }

_platforms_transition = transition(
    implementation = _platforms_transition_impl,
    inputs = [],
    outputs = ["//command_line_option:platforms"],
)

def _stack_bundle_impl(ctx):
    outputs = []
    groups = {}
    manifest = {}
    for platform, targets in sorted(ctx.split_attr.layers.items()):
        layers = {}
        for target in targets:
            info = target[LayerInfo]
            for layer in [info] + info.lower:
                layers[layer.key] = layer
        published = []
        order = []
        for layer in sorted(layers.values(), key = lambda layer: (len(layer.lower), layer.key)):
            for file in (layer.archive, layer.metadata):
                link = ctx.actions.declare_file("{}/{}/{}".format(ctx.label.name, platform, file.basename))
                ctx.actions.symlink(output = link, target_file = file)
                published.append(link)
            order.append(layer.metadata.basename)
        manifest[platform] = {"deploy_order": order}
        groups[platform] = depset(published)
        outputs += published
    manifest_file = ctx.actions.declare_file(ctx.label.name + "/manifest.json")
    ctx.actions.write(manifest_file, json.encode_indent({"platforms": manifest}) + "\n")
    return [
        DefaultInfo(files = depset([manifest_file] + outputs)),
        OutputGroupInfo(**groups),
    ]

stack_bundle = rule(
    implementation = _stack_bundle_impl,
    doc = """The archives and metadata of `layers` (and every layer below them) for each of `platforms`, built in one
invocation from any host: `<name>/<platform>/<env_name>-<platform>.<format>` and `.json`, plus
`<name>/manifest.json` listing, per platform, the metadata files in deploy order (lowest layer first). Output groups
named after the platforms select one platform's files.""",
    attrs = {
        "layers": attr.label_list(
            mandatory = True,
            providers = [LayerInfo],
            cfg = _platforms_transition,
            doc = "The top layers of the stack (usually its applications).",
        ),
        "platforms": attr.string_list(
            mandatory = True,
            doc = "Target platforms to build for (venvstacks names, e.g. `linux_x86_64`, `macosx_arm64`, `win_amd64`).",
        ),
    },
)
