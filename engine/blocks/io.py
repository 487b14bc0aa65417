"""Input and Output: where tensors enter and leave the network."""

from __future__ import annotations

from ..errors import BlockError
from ..spec import BlockSpec, Params, ParamSpec, Shape, fmt_shape

# What the network's result means (SPEC §7); engine.tasks has one object per name.
TASKS = ("classification", "segmentation", "detection")
AVAILABLE_TASKS = ("classification", "segmentation")


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
    return ins[0]


def _output_subtitle(p: Params) -> str:
    """Silent for classifiers (as before); otherwise the task, which changes everything
    downstream (loss, metrics, what predict writes)."""
    task = p.get("task", "classification")
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
                      "size) or detection (not available yet).", choices=TASKS),
        ),
        infer=_output_shape,
        id_prefix="out",
        subtitle=_output_subtitle,
        saved_activations=lambda p, ins, out: 0,
    ),
)
