"""Input and Output: where tensors enter and leave the network."""

from __future__ import annotations

from ..errors import BlockError
from ..spec import BlockSpec, Params, ParamSpec, Shape, fmt_shape

# What the network's result means (SPEC §7); engine.tasks has one object per name.
TASKS = ("classification", "segmentation", "detection")
AVAILABLE_TASKS = TASKS
DEFAULT_ANCHORS = ((8.0, 8.0), (16.0, 16.0), (32.0, 32.0))


def _input_shape(p: Params, ins: list[Shape]) -> Shape:
    return (p["channels"], p["height"], p["width"])


def _output_shape(p: Params, ins: list[Shape]) -> Shape:
    task = p.get("task", "classification")
    if task not in AVAILABLE_TASKS:
        raise BlockError(f"the task {task} is not available yet: set the Output's task to "
                         f"{' or '.join(AVAILABLE_TASKS)}")
    if task == "segmentation" and len(ins[0]) != 3:
        raise BlockError(
            f"a segmentation Output needs a class score per pixel [K,H,W] but gets "
            f"{fmt_shape(ins[0])}: end the network with a 1×1 Conv2d (out_channels = the "
            f"number of classes) at the Input's size instead of Flatten/Linear")
    if task == "detection":
        _check_detection_head(p, ins[0])
    return ins[0]


def _check_detection_head(p: Params, shape: Shape) -> None:
    """A detection Output takes a grid [A·(5+K), S, S] (SPEC §7); K comes with the
    dataset (engine.dataset_fit checks it), but A·(5+K) must at least be possible."""
    a = len(p.get("anchors", DEFAULT_ANCHORS))
    if len(shape) != 3:
        raise BlockError(
            f"a detection Output needs a grid [A·(5+K),S,S] but gets {fmt_shape(shape)}: end "
            f"the network with a 1×1 Conv2d with {a}×(5 + classes) out_channels instead of "
            f"Flatten/Linear")
    if shape[0] % a or shape[0] // a < 6:
        raise BlockError(
            f"a detection head gives {a} anchors × (5 + classes) channels but this one has "
            f"{shape[0]}: set the last Conv2d's out_channels to {a}×(5 + classes), e.g. "
            f"{a * 10} for 5 classes")


def _output_subtitle(p: Params) -> str:
    """Silent for classifiers (as before); otherwise the task, which changes everything
    downstream (loss, metrics, what predict writes)."""
    task = p.get("task", "classification")
    if task == "detection":
        a = len(p.get("anchors", DEFAULT_ANCHORS))
        return f"detection · {a} anchor{'s' if a != 1 else ''}"
    return "" if task == "classification" else str(task)


BLOCKS = (
    BlockSpec(
        type="Input",
        category="Input/Output",
        doc="An image batch entering the network: channels × height × width.",
        params=(
            ParamSpec("channels", "int", 3, "Image channels: 1 for grey, 3 for RGB.", 1, 4096),
            ParamSpec("height", "int", 32, "Image height in pixels.", 1, 8192),
            ParamSpec("width", "int", 32, "Image width in pixels.", 1, 8192),
        ),
        infer=_input_shape,
        id_prefix="input",
        subtitle=lambda p: f"{p['channels']}×{p['height']}×{p['width']}",
        min_inputs=0,
        max_inputs=0,
        saved_activations=lambda p, ins, out: 0,  # Report.memory counts it as `inputs`
    ),
    BlockSpec(
        type="Output",
        category="Input/Output",
        doc="Marks the network's result: its input is what the model returns, read as "
            "its task says.",
        params=(
            ParamSpec("task", "choice", "classification",
                      "What the result means: classification (a score per class [K]), "
                      "segmentation (a score per class and pixel [K,H,W] at the Input's "
                      "size) or detection (A·(5+K) channels per cell of an S×S grid, "
                      "YOLO-style).", choices=TASKS),
            ParamSpec("anchors", "anchors", DEFAULT_ANCHORS,
                      "Detection: the anchor boxes' [w, h] in input pixels; each grid "
                      "cell predicts one box per anchor, sized relative to it.",
                      only_when=("task", "detection")),
        ),
        infer=_output_shape,
        id_prefix="out",
        subtitle=_output_subtitle,
        saved_activations=lambda p, ins, out: 0,
    ),
)
