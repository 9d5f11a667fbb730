"""How messages name a target: `//package:name` as users write it (Bazel 7 prints main-repository labels as `@@//...`)."""

def label_text(label):
    """The label as users write it in their own workspace.

    Args:
      label: a Label.

    Returns:
      `//package:name` for the main repository, else the canonical form.
    """
    if label.workspace_name:
        return str(label)
    return "//{}:{}".format(label.package, label.name)
