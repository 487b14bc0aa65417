"""Every block of the catalogue against the real PyTorch module it compiles to.

For a spread of parameters and input sizes drawn by hypothesis, the shape rule, the
parameter count and the MAC count of each block must equal what the built module
actually does; where the shape rule refuses, torch must refuse too (the few inputs
Convas refuses on purpose although torch would run them are listed in ``DELIBERATE``).
The receptive-field steps are checked in test_receptive_field.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from engine.analysis import resolve_params
from engine.blocks import CATALOGUE, torch_modules
from engine.errors import BlockError
from engine.export.constructors import constructor
from engine.spec import Functional, Recipe

torch.set_num_threads(1)

# More examples for the blocks with many parameters, fewer for the simple ones.
EXAMPLES = {"Conv2d": 45, "ConvTranspose2d": 40, "MaxPool2d": 40, "AvgPool2d": 40}
BATCH = 2

# ---- strategies ------------------------------------------------------------------------


def int2(lo: int, hi: int) -> st.SearchStrategy:
    """An int or an [h, w] pair, as a user writes it in the file."""
    return st.one_of(st.integers(lo, hi), st.lists(st.integers(lo, hi), min_size=2, max_size=2))


def omit_some(draw, raw: dict, keep: tuple[str, ...] = ()) -> dict:
    """Leave out some parameters so that their defaults are exercised too."""
    drop = draw(st.sets(st.sampled_from(sorted(raw)), max_size=2)) if raw else set()
    return {k: v for k, v in raw.items() if k not in drop or k in keep}


def image(draw, c=None, lo: int = 1, hi: int = 17) -> tuple[int, int, int]:
    c = draw(st.integers(1, 6)) if c is None else c
    return (c, draw(st.integers(lo, hi)), draw(st.integers(lo, hi)))


def image_or_rarely_vector(draw, c=None, lo: int = 1, hi: int = 17) -> tuple[int, ...]:
    """Mostly a [C,H,W] input; now and then a vector, which spatial blocks must refuse."""
    if draw(st.integers(0, 11)) == 5:  # not 0: hypothesis favours the bounds
        return (draw(st.integers(1, 12)),)
    return image(draw, c, lo, hi)


@st.composite
def conv2d_case(draw):
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    fits = draw(st.integers(0, 7)) > 0  # mostly channels that groups divide
    c = draw(st.integers(1, 3)) * groups if fits else draw(st.integers(1, 7))
    out = draw(st.integers(1, 3)) * groups if fits else draw(st.integers(1, 7))
    raw = {
        "out_channels": out,
        "kernel_size": draw(int2(1, 6)),
        "stride": draw(int2(1, 3)),
        "padding": draw(st.one_of(st.just("same"), st.just("valid"), int2(0, 3))),
        "dilation": draw(st.one_of(st.just(1), int2(1, 3))),
        "groups": groups,
        "bias": draw(st.booleans()),
    }
    return omit_some(draw, raw, keep=("groups", "out_channels")), [
        image_or_rarely_vector(draw, c, 1, 16)]


@st.composite
def tconv_case(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    c = draw(st.integers(1, 3)) * groups
    raw = {
        "out_channels": draw(st.integers(1, 3)) * groups,
        "kernel_size": draw(int2(1, 5)),
        "stride": draw(int2(1, 3)),
        "padding": draw(int2(0, 2)),
        "output_padding": draw(st.one_of(st.just(0), int2(0, 2))),
        "groups": groups,
        "bias": draw(st.booleans()),
    }
    return omit_some(draw, raw, keep=("groups", "out_channels")), [
        image_or_rarely_vector(draw, c, 1, 9)]


def pool_case(avg: bool):
    @st.composite
    def case(draw):
        raw = {
            "kernel_size": draw(int2(1, 5)),
            "stride": draw(st.one_of(st.none(), int2(1, 3))),
            "padding": draw(st.one_of(st.just(0), int2(0, 2))),
            "ceil_mode": draw(st.booleans()),
        }
        if avg:
            raw["count_include_pad"] = draw(st.booleans())
        return omit_some(draw, raw), [image_or_rarely_vector(draw, None, 1, 15)]

    return case()


@st.composite
def adaptive_case(draw):
    return {"output_size": draw(int2(1, 6))}, [image_or_rarely_vector(draw, None, 1, 13)]


@st.composite
def gap_case(draw):
    return {}, [image_or_rarely_vector(draw)]


def any_shape(draw) -> tuple[int, ...]:
    return image(draw) if draw(st.booleans()) else (draw(st.integers(1, 20)),)


@st.composite
def activation_case(draw):
    fn = draw(st.sampled_from(CATALOGUE["Activation"].param_index["function"].choices))
    raw = {"function": fn}
    if fn == "leaky_relu" and draw(st.booleans()):
        raw["negative_slope"] = draw(st.floats(0.0, 1.0))
    return raw, [any_shape(draw)]


@st.composite
def batchnorm_case(draw):
    raw = {"eps": draw(st.floats(1e-8, 0.1)), "momentum": draw(st.floats(0.0, 1.0)),
           "affine": draw(st.booleans())}
    return omit_some(draw, raw), [any_shape(draw)]


@st.composite
def dropout_case(draw):
    return {"p": draw(st.floats(0.0, 1.0))}, [any_shape(draw)]


@st.composite
def flatten_case(draw):
    return {}, [any_shape(draw)]


@st.composite
def linear_case(draw):
    raw = {"out_features": draw(st.integers(1, 20)), "bias": draw(st.booleans())}
    shape = image(draw, None, 1, 5) if draw(st.integers(0, 7)) == 0 else (
        draw(st.integers(1, 40)),)
    return omit_some(draw, raw), [shape]


@st.composite
def upsample_case(draw):
    raw = {"scale_factor": draw(st.integers(1, 4)),
           "mode": draw(st.sampled_from(["nearest", "bilinear"]))}
    return omit_some(draw, raw), [image_or_rarely_vector(draw, None, 1, 8)]


@st.composite
def add_case(draw):
    n = draw(st.integers(2, 4))
    base = any_shape(draw)
    shapes = [base] * n
    if draw(st.integers(0, 3)) == 0:  # one input differs
        i = draw(st.integers(1, n - 1))
        shapes[i] = any_shape(draw)
    return {}, shapes


@st.composite
def concat_case(draw):
    n = draw(st.integers(2, 4))
    if draw(st.integers(0, 4)) == 0:  # vectors
        return {}, [(draw(st.integers(1, 9)),) for _ in range(n)]
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    shapes = [(draw(st.integers(1, 6)), h, w) for _ in range(n)]
    if draw(st.integers(0, 3)) == 0:  # one input of another size or rank
        i = draw(st.integers(0, n - 1))
        shapes[i] = any_shape(draw)
    return {}, shapes


@st.composite
def residual_case(draw):
    bottleneck = draw(st.booleans())
    out = draw(st.integers(1, 4)) * 4 if bottleneck and draw(st.integers(0, 5)) else draw(
        st.integers(1, 12))
    raw = {"out_channels": out, "stride": draw(st.integers(1, 3)), "bottleneck": bottleneck}
    c = draw(st.sampled_from([out, out, draw(st.integers(1, 12))]))
    return raw, [image_or_rarely_vector(draw, c, 1, 9)]


@st.composite
def inception_case(draw):
    names = ("ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj")
    raw = {k: draw(st.integers(1, 5)) for k in names}
    return raw, [image_or_rarely_vector(draw, None, 1, 8)]


@st.composite
def dense_case(draw):
    raw = {"num_layers": draw(st.integers(1, 3)), "growth_rate": draw(st.integers(1, 5)),
           "bn_size": draw(st.integers(1, 3))}
    return raw, [image_or_rarely_vector(draw, None, 1, 7)]


CASES: dict[str, st.SearchStrategy] = {
    "Conv2d": conv2d_case(),
    "ConvTranspose2d": tconv_case(),
    "MaxPool2d": pool_case(avg=False),
    "AvgPool2d": pool_case(avg=True),
    "AdaptiveAvgPool2d": adaptive_case(),
    "GlobalAvgPool": gap_case(),
    "Activation": activation_case(),
    "BatchNorm": batchnorm_case(),
    "Dropout": dropout_case(),
    "Flatten": flatten_case(),
    "Linear": linear_case(),
    "Upsample": upsample_case(),
    "Add": add_case(),
    "Concat": concat_case(),
    "ResidualBlock": residual_case(),
    "InceptionBlock": inception_case(),
    "DenseBlock": dense_case(),
}

TESTED_BLOCKS = [t for t in CATALOGUE if t not in ("Input", "Output")]

# ---- running the real module -----------------------------------------------------------


def run_block(built, shapes: list[tuple[int, ...]]) -> tuple[torch.Tensor, int]:
    """Output of the built block on a random batch, and the MACs counted by hooks.

    MACs are counted from each Conv2d/ConvTranspose2d/Linear submodule's weight tensor
    and its actual input/output size, independently of the catalogue's formulas.
    """
    inputs = [torch.randn(BATCH, *s) for s in shapes]
    if isinstance(built, Functional):
        with torch.no_grad():
            y = built.fn(inputs, *built.args) if built.list_input else built.fn(*inputs,
                                                                                 *built.args)
        return y, 0
    assert isinstance(built, nn.Module)
    macs = 0

    def hook(m: nn.Module, inp, out) -> None:
        nonlocal macs
        w = m.weight
        if isinstance(m, nn.Conv2d):  # each output element: (C_in/groups)·kh·kw MACs
            macs += out[0].numel() * w.shape[1] * w.shape[2] * w.shape[3]
        elif isinstance(m, nn.ConvTranspose2d):  # each input element: (C_out/groups)·kh·kw
            macs += inp[0][0].numel() * w.shape[1] * w.shape[2] * w.shape[3]
        else:  # Linear
            macs += w.numel()

    handles = [m.register_forward_hook(hook) for m in built.modules()
               if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)]
    built.eval()
    try:
        with torch.no_grad():
            y = built(*inputs)
    finally:
        for h in handles:
            h.remove()
    return y, macs


def n_params(built) -> int:
    return 0 if isinstance(built, Functional) else sum(p.numel() for p in built.parameters())


# Inputs Convas refuses on purpose although torch would run them, with the reason.
def _same_even_kernel(p, shapes, msg):
    # torch's padding="same" pads an even kernel asymmetrically; Convas's "same" is
    # symmetric (so that it also works at stride > 1), and says so.
    return 'padding "same" needs an odd kernel' in msg


def _linear_on_image(p, shapes, msg):
    # nn.Linear runs on the last dimension of [N,C,H,W] when W happens to equal C.
    c, _, w = shapes[0]
    return w == c and "insert Flatten or GlobalAvgPool" in msg


def _add_broadcasts(p, shapes, msg):
    # torch broadcasts [64,1,1] + [64,8,8]; an Add block wants equal shapes.
    try:
        torch.broadcast_shapes(*((BATCH, *s) for s in shapes))
    except RuntimeError:
        return False
    return "differ" in msg


def _bottleneck_not_by_four(p, shapes, msg):
    # the bottleneck width is out_channels/4, which must come out exact.
    return p["bottleneck"] and p["out_channels"] % 4 != 0 and "divisible by 4" in msg


DELIBERATE: dict[str, Callable] = {
    "Conv2d": _same_even_kernel,
    "Linear": _linear_on_image,
    "Add": _add_broadcasts,
    "ResidualBlock": _bottleneck_not_by_four,
}


def check_block(type_name: str, raw: dict, shapes: list[tuple[int, ...]]) -> None:
    spec = CATALOGUE[type_name]
    params, problems = resolve_params(spec, raw)
    assert not problems, problems
    try:
        out = spec.infer(params, shapes)
    except BlockError as exc:
        msg = str(exc)
        assert msg and ":" in msg, f"an error should say what to do: {msg!r}"
        deliberate = DELIBERATE.get(type_name)
        if deliberate is not None and deliberate(params, shapes, msg):
            return
        try:
            y, _ = run_block(spec.build(params, shapes), shapes)
        except (RuntimeError, ValueError, IndexError, TypeError):
            return  # torch refuses too
        # torch ran: only acceptable where it produced nothing (a 0-sized output)
        assert y.numel() == 0, f"torch accepts what the shape rule refuses: {msg}"
        return
    built = spec.build(params, shapes)
    y, macs = run_block(built, shapes)
    assert tuple(y.shape) == (BATCH, *out), (params, shapes)
    assert spec.count_params(params, shapes) == n_params(built), (params, shapes)
    assert spec.count_macs(params, shapes, out) == macs, (params, shapes)


def test_every_block_has_a_strategy():
    missing = [t for t in TESTED_BLOCKS if t not in CASES]
    assert not missing, f"blocks without a test strategy: {missing}"
    assert not set(CASES) - set(TESTED_BLOCKS), "strategies for blocks no longer in CATALOGUE"


@pytest.mark.parametrize("type_name", TESTED_BLOCKS)
def test_block_matches_torch(type_name):
    if type_name not in CASES:
        pytest.fail(f"{type_name} has no strategy in CASES")

    @settings(max_examples=EXAMPLES.get(type_name, 25), deadline=None)
    @given(CASES[type_name])
    def check(case):
        raw, shapes = case
        check_block(type_name, raw, shapes)

    check()


@pytest.mark.parametrize("type_name", TESTED_BLOCKS)
def test_block_defaults_work_on_a_typical_input(type_name):
    """The success path runs for every block at least once, whatever hypothesis draws."""
    spec = CATALOGUE[type_name]
    shape = (4,) if type_name == "Linear" else (4, 12, 12)
    shapes = [shape] * max(spec.min_inputs, 1)
    params, problems = resolve_params(spec, {})
    assert not problems
    out = spec.infer(params, shapes)
    built = spec.build(params, shapes)
    y, macs = run_block(built, shapes)
    assert tuple(y.shape[1:]) == out
    assert spec.count_params(params, shapes) == n_params(built)
    assert spec.count_macs(params, shapes, out) == macs


# ---- hand-picked cases that pin the formulas ---------------------------------------------


@pytest.mark.parametrize("raw, shape, expected", [
    ({"kernel_size": 3, "stride": 2, "padding": "same"}, (1, 7, 8), (16, 4, 4)),
    ({"kernel_size": 3, "dilation": 2, "padding": "same"}, (1, 9, 9), (16, 9, 9)),
    ({"kernel_size": 5, "padding": "valid"}, (1, 32, 32), (16, 28, 28)),
    ({"kernel_size": [1, 3], "padding": [0, 1], "stride": [1, 2]}, (1, 5, 5), (16, 5, 3)),
])
def test_conv2d_pinned_shapes(raw, shape, expected):
    spec = CATALOGUE["Conv2d"]
    params, problems = resolve_params(spec, raw)
    assert not problems
    assert spec.infer(params, [shape]) == expected


@pytest.mark.parametrize("raw, shape, expected", [
    ({"kernel_size": 3, "stride": 2, "ceil_mode": True}, (1, 6, 6), (1, 3, 3)),
    # the last window would start in the padding, so PyTorch drops it: 3, not 4
    ({"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}, (1, 5, 5), (1, 3, 3)),
    ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, (1, 6, 6), (1, 4, 4)),
])
def test_pool_ceil_mode_pinned(raw, shape, expected):
    spec = CATALOGUE["MaxPool2d"]
    params, _ = resolve_params(spec, raw)
    out = spec.infer(params, [shape])
    y, _ = run_block(spec.build(params, [shape]), [shape])
    assert out == tuple(y.shape[1:]) == expected


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_same_with_even_kernel_is_refused_even_though_torch_pads_asymmetrically():
    spec = CATALOGUE["Conv2d"]
    params, _ = resolve_params(spec, {"kernel_size": 4, "padding": "same"})
    with pytest.raises(BlockError, match="odd kernel"):
        spec.infer(params, [(3, 8, 8)])
    # torch itself accepts it at stride 1 (with uneven padding): a deliberate refusal.
    assert nn.Conv2d(3, 4, 4, padding="same")(torch.zeros(1, 3, 8, 8)).shape[-2:] == (8, 8)


# ---- parameter specs ---------------------------------------------------------------------


ALL_PARAMS = [(t, p) for t, s in CATALOGUE.items() for p in s.params]


@pytest.mark.parametrize("type_name, pspec", ALL_PARAMS,
                         ids=[f"{t}.{p.name}" for t, p in ALL_PARAMS])
def test_default_passes_its_own_normalize(type_name, pspec):
    value = pspec.normalize(pspec.default)
    assert pspec.normalize(value if not isinstance(value, tuple) else list(value)) == value
    assert pspec.doc.strip(), f"{type_name}.{pspec.name} has no doc"
    assert pspec.expected()


@pytest.mark.parametrize("type_name", list(CATALOGUE))
def test_every_block_has_what_the_catalogue_needs(type_name):
    """Adding a block touches its module under engine/blocks and CASES above: whatever
    it lacks that the palette, canvas, compiler or .py export need fails here."""
    spec = CATALOGUE[type_name]
    assert spec.type == type_name and spec.category.strip() and spec.doc.strip()
    assert spec.source == "built-in"
    assert len(spec.param_index) == len(spec.params), "two parameters share a name"
    assert all(p.doc.strip() for p in spec.params), "every parameter needs a doc"
    params, problems = resolve_params(spec, {})
    assert not problems
    # a new id such as conv1: its own prefix, a valid name, not the fallback
    assert spec.id_prefix and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", spec.prefix())
    # the canvas line: a function of the params (called bare, so a slip raises here)
    assert isinstance(spec.subtitle(params), str)
    assert (spec.max_inputs is None) == spec.grows
    if type_name in ("Input", "Output"):
        assert spec.recipe is None  # the compiler makes placeholders and the output
        return
    assert type_name in CASES, f"{type_name} has no hypothesis strategy in CASES"
    assert spec.recipe is not None, f"{type_name} has no build recipe"
    shape = (4,) if type_name == "Linear" else (4, 12, 12)
    made = spec.recipe(params, [shape] * max(spec.min_inputs, 1))
    assert isinstance(made, Recipe | Functional)
    if isinstance(made, Recipe):
        # the .py export writes the call from the recipe: it must rebuild the same module
        assert isinstance(made.target, str), "built-in blocks name their class"
        namespace = {"nn": nn, **vars(torch_modules)}
        rebuilt = eval(constructor(made), namespace)  # noqa: S307 - our own recipe text
        def squeezed(module: nn.Module) -> str:  # the file writes (3, 3) as 3
            return re.sub(r"\((\d+), \1\)", r"\1", repr(module))

        assert squeezed(rebuilt) == squeezed(made.build())


def test_new_ids_differ_between_block_types():
    prefixes = [s.prefix() for s in CATALOGUE.values()]
    assert len(set(prefixes)) == len(prefixes), prefixes


@pytest.mark.parametrize("value, kind, expected", [
    (3, "int2", (3, 3)),
    ([3, 5], "int2", (3, 5)),
    ((3, 5), "int2", (3, 5)),
    (3.0, "int2", (3, 3)),
    (4, "int", 4),
    (2.0, "int", 2),
    (1, "float", 1.0),
])
def test_normalize_canonical_values(value, kind, expected):
    from engine.spec import ParamSpec

    ps = ParamSpec("x", kind, 1, "doc", 0, 10)
    assert ps.normalize(value) == expected


@pytest.mark.parametrize("value, kind", [
    (True, "int"), ("3", "int"), (2.5, "int"), ([1, 2, 3], "int2"), ([1], "int2"),
    ([1, True], "int2"), (11, "int"), (-1, "int2"), ([1, 11], "int2"), (None, "int"),
    (float("nan"), "float"), (float("inf"), "float"), (True, "float"), ("x", "float"),
    (1, "bool"), ("true", "bool"),
])
def test_normalize_refuses_wrong_values(value, kind):
    from engine.spec import ParamSpec

    ps = ParamSpec("x", kind, 1, "doc", 0, 10)
    with pytest.raises(ValueError):
        ps.normalize(value)


def test_choice_and_words_and_nullable():
    conv = CATALOGUE["Conv2d"].param_index["padding"]
    assert conv.normalize("same") == "same"
    with pytest.raises(ValueError):
        conv.normalize("full")
    stride = CATALOGUE["MaxPool2d"].param_index["stride"]
    assert stride.normalize(None) is None
    fn = CATALOGUE["Activation"].param_index["function"]
    with pytest.raises(ValueError, match="one of"):
        fn.normalize("swish")
