"""`convas predict` as a user runs it (SPEC §7): JSON and readable output, masks on
disk, and clear refusals (exit 1, no traceback) or usage errors (exit 2)."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from designer.cli import main
from engine import Graph, analyze
from engine.checkpoint import load_checkpoint

XO = "resources/templates/x_vs_o.convas.json"


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code, _, err = run(["train", XO, "--dataset", "shapes", "--epochs", "1", "--limit", "160",
                        "--device", "cpu", "--out", str(out)])
    assert code == 0, err
    images = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name in ("b.png", "a.jpg"):  # any format Pillow reads; a colour one converted to grey
        Image.fromarray(rng.integers(0, 256, (40, 30, 3)).astype(np.uint8)).save(images / name)
    return out / "model.pt", images


def test_json_gives_the_top_classes_of_each_image_in_folder_order(trained):
    weights, images = trained
    code, out, err = run(["predict", XO, "--weights", str(weights), str(images), "--json"])
    assert code == 0, err
    results = json.loads(out)
    classes = load_checkpoint(weights)["classes"]  # the names and order training used
    assert [r["image"] for r in results] == [str(images / "a.jpg"), str(images / "b.png")]
    for r in results:
        assert set(r) == {"image", "top"}
        assert [t["class"] for t in r["top"]] in (["X", "O"], ["O", "X"])  # K ≤ class count
        assert {t["class"]: t["index"] for t in r["top"]} == {c: i for i, c in
                                                              enumerate(classes)}
        assert sum(t["probability"] for t in r["top"]) == pytest.approx(1.0, abs=1e-5)


def test_readable_lines_and_top(trained):
    weights, images = trained
    code, out, _ = run(["predict", XO, "--weights", str(weights), str(images / "b.png"),
                        "--top", "1"])
    assert code == 0
    (line,) = out.splitlines()
    assert line.startswith("b.png: ") and line.endswith(" %") and "," not in line


def test_segmentation_writes_masks_to_out(tmp_path):
    from engine.checkpoint import save_checkpoint
    from engine.compile import compile_graph

    graph = Graph.load("resources/templates/fcn_shapes.convas.json")
    model = compile_graph(graph)
    inp = next(n for n in graph.nodes if graph.type_of(n) == "Input")
    p = graph.params_of(inp)
    c, h, w = int(p.get("channels", 1)), int(p["height"]), int(p["width"])
    report = analyze(graph)
    classes = [f"c{i}" for i in range(report.nodes[report.output_id].output_shape[0])]
    ckpt = save_checkpoint(tmp_path / "model.pt", graph, model.state_dict(),
                           task="segmentation", classes=classes,
                           preprocess={"channels": c, "size": [h, w], "mean": [0.5] * c,
                                       "std": [0.25] * c})
    Image.fromarray(np.full((h + 7, w + 3, 3), 90, np.uint8)).save(tmp_path / "img.png")
    graph_file = tmp_path / "fcn.convas.json"
    graph.save(graph_file)
    code, out, err = run(["predict", str(graph_file), "--weights", str(ckpt),
                          str(tmp_path / "img.png"), "--out", str(tmp_path / "masks"),
                          "--json"])
    assert code == 0, err
    (r,) = json.loads(out)
    assert set(r) == {"image", "mask", "classes_present"}
    assert r["mask"] == str(tmp_path / "masks" / "img.mask.png")
    with Image.open(r["mask"]) as img:
        assert img.mode == "P" and img.size == (w + 3, h + 7)
        present = sorted(int(v) for v in np.unique(np.asarray(img)))
    assert r["classes_present"] == [classes[i] for i in present]
    code, out, _ = run(["predict", str(graph_file), "--weights", str(ckpt),
                        str(tmp_path / "img.png"), "--out", str(tmp_path / "masks")])
    assert code == 0 and out.startswith(f"img.png: mask {r['mask']} (")


@pytest.mark.parametrize("case, expected", [
    ("unreadable", "bad.png"), ("missing image", "nowhere.png: no such"),
    ("missing checkpoint", "no such checkpoint"), ("other design", "does not fit"),
])
def test_refusals_exit_1_with_the_file_named(trained, tmp_path, case, expected):
    weights, images = trained
    design, target = XO, str(images)
    if case == "unreadable":
        (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
        target = str(tmp_path / "bad.png")
    elif case == "missing image":
        target = str(tmp_path / "nowhere.png")
    elif case == "missing checkpoint":
        weights = tmp_path / "none.pt"
    else:
        graph = Graph.load(XO)
        conv = next(n for n in graph.nodes if graph.type_of(n) == "Conv2d")
        graph.set_param(conv, "out_channels", 3)
        design = str(tmp_path / "other.convas.json")
        graph.save(design)
    code, out, err = run(["predict", design, "--weights", str(weights), target])
    assert code == 1 and out == ""
    assert expected in err and "Traceback" not in err


@pytest.mark.parametrize("extra", [[], ["--weights", "m.pt", "--top", "0"],
                                   ["--weights", "m.pt", "--score-threshold", "2"]])
def test_usage_errors_exit_2(extra):
    code, _, err = run(["predict", XO, "img.png", *extra])
    assert code == 2 and "usage" in err
