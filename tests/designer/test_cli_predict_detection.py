"""``convas predict --json`` on a detector (SPEC §7): on the validation images of a
YOLO-layout folder its boxes score the mAP@0.5 the trainer reported for them, and the
readable output names each object."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from designer.cli import main
from designer.cli_predict import describe
from engine.data import load_dataset
from engine.detection import DetectionMeter

ROOT = Path(__file__).resolve().parents[2]
SIZE = 32


def write_yolo_folder(folder: Path) -> None:
    """shapes-det images as PNG files with YOLO label lines, in train/ and val/, so the
    validation images are files predict can read."""
    data = load_dataset("shapes-det", val_fraction=0.0, seed=3,
                        options={"count": 400, "size": SIZE})
    x, y = data.train.x.numpy(), data.train.y.numpy()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "classes.txt").write_text("\n".join(data.classes) + "\n")
    for i in range(len(x)):
        split = "val" if i % 4 == 0 else "train"
        (folder / split / "images").mkdir(parents=True, exist_ok=True)
        (folder / split / "labels").mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i, 0]).save(folder / split / "images" / f"{i:04d}.png")
        lines = []
        for c, x1, y1, x2, y2 in y[i]:
            if c < 0:
                continue
            lines.append(f"{int(c)} {(x1 + x2) / 2 / SIZE:.6f} {(y1 + y2) / 2 / SIZE:.6f} "
                         f"{(x2 - x1) / SIZE:.6f} {(y2 - y1) / SIZE:.6f}")
        (folder / split / "labels" / f"{i:04d}.txt").write_text("\n".join(lines) + "\n")


def tiny_detector(path: Path, data: Path) -> None:
    """Conv → ReLU → pool ×3 (a 4×4 grid at 32×32) and a 1×1 head for 5 classes."""
    chain = [("x", "Input", {"channels": 1, "height": SIZE, "width": SIZE}),
             ("c1", "Conv2d", {"out_channels": 16}), ("r1", "Activation", {}),
             ("p1", "MaxPool2d", {}),
             ("c2", "Conv2d", {"out_channels": 32}), ("r2", "Activation", {}),
             ("p2", "MaxPool2d", {}),
             ("c3", "Conv2d", {"out_channels": 32}), ("r3", "Activation", {}),
             ("p3", "MaxPool2d", {}),
             ("head", "Conv2d", {"out_channels": 30, "kernel_size": 1}),
             ("out", "Output", {"task": "detection",
                                "anchors": [[6, 6], [10, 10], [15, 15]]})]
    design = {"format": "convas.graph", "version": 1, "name": "tiny-yolo",
              "nodes": [{"id": i, "type": t, "params": p} for i, t, p in chain],
              "edges": [{"from": a[0], "to": b[0]} for a, b in zip(chain, chain[1:],
                                                                     strict=False)],
              "training": {"dataset": str(data), "epochs": 25, "batch_size": 16,
                           "optimizer": "adam", "lr": 0.003, "device": "cpu"}}
    path.write_text(json.dumps(design))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("yolo-predict")
    folder = root / "data"
    write_yolo_folder(folder)
    design = root / "tiny.convas.json"
    tiny_detector(design, folder)
    out = root / "run"
    assert main(["train", str(design), "--out", str(out)]) == 0
    return design, folder, out


def truths(label_file: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = [list(map(float, line.split())) for line in label_file.read_text().splitlines()
            if line.strip()]
    rows = np.array(rows, dtype=np.float64).reshape(-1, 5)
    cx, cy, w, h = (rows[:, k] * SIZE for k in range(1, 5))
    return (np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1),
            rows[:, 0].astype(np.int64))


def test_predicted_boxes_score_the_map_the_trainer_reported(trained, capsys):
    design, folder, out = trained
    with open(out / "metrics.csv", newline="") as fh:
        reported = float(list(csv.DictReader(fh))[-1]["val_map50"])
    assert reported > 0.05, "the tiny detector learned nothing: the comparison says little"
    capsys.readouterr()
    code = main(["predict", str(design), "--weights", str(out / "model.pt"), "--json",
                 "--score-threshold", "0.01", str(folder / "val" / "images")])
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 100
    meter = DetectionMeter(num_classes=5)
    for result in results:
        found = result["detections"]
        boxes = np.array([d["box"] for d in found], dtype=np.float64).reshape(-1, 4)
        true_boxes, true_labels = truths(
            folder / "val" / "labels" / (Path(result["image"]).stem + ".txt"))
        meter.add(boxes, np.array([d["score"] for d in found]),
                  np.array([d["index"] for d in found], dtype=np.int64), true_boxes,
                  true_labels)
    assert meter.compute()["map50"] == pytest.approx(reported, abs=0.01)


def test_the_readable_line_names_each_object(trained):
    design, folder, out = trained
    stream = io.StringIO()
    import argparse

    from designer.cli_predict import predict as run_predict

    args = argparse.Namespace(file=str(design), images=[str(folder / "val" / "images")],
                              weights=str(out / "model.pt"), json=False, out=None, top=5,
                              score_threshold=0.0)
    assert run_predict(args, out=stream) == 0
    lines = stream.getvalue().splitlines()
    assert len(lines) == 100 and all(line.startswith(tuple("0123456789")) for line in lines)
    assert describe({"image": "a.png", "detections": []}) == \
        "a.png: no object above the score threshold"
    assert describe({"image": "a.png", "detections": [
        {"class": "X", "index": 0, "score": 0.97, "box": [3.2, 4, 20, 22]}]}) == \
        "a.png: 1 object: X 0.97 at (3, 4, 20, 22)"
