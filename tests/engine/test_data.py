"""Datasets: every file format from small fixtures, the built-in sets, batching and
download. Nothing here reaches the internet: downloads come from a local server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import (  # noqa: E402  (tests/engine is on sys.path under pytest)
    make_cifar,
    make_image_folder,
    make_mnist,
    write_idx,
)
from PIL import Image

from engine.data import (
    BUILTIN,
    DOWNLOADABLE,
    SHAPES_CLASSES,
    Augment,
    Batches,
    Dataset,
    DatasetError,
    ImageSet,
    download,
    fetch,
    load_dataset,
)
from engine.data.batches import random_crop

# ---------------------------------------------------------------- API shape


def check_api(ds: Dataset) -> None:
    """What the trainer relies on, for every loader."""
    assert isinstance(ds, Dataset)
    for part in (ds.train, ds.val):
        assert isinstance(part, ImageSet)
        assert part.x.dtype in (torch.uint8, torch.float32) and part.x.device.type == "cpu"
        assert part.x.dim() == 4 and part.y.dtype == torch.int64 and part.y.dim() == 1
        assert len(part) == len(part.y) == part.x.shape[0]
        if len(part):
            assert part.image_shape == ds.image_shape
            assert 0 <= int(part.y.min()) and int(part.y.max()) < ds.num_classes
    assert ds.num_classes == len(ds.classes)
    assert len(ds.mean) == len(ds.std) == ds.image_shape[0]
    assert all(s > 0 for s in ds.std)
    assert ds.describe().startswith(ds.name)


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_uses_t10k_as_validation(tmp_path, gz):
    ref = make_mnist(tmp_path / "mnist", gz=gz)
    ds = load_dataset(str(tmp_path / "mnist"))
    check_api(ds)
    assert ds.image_shape == (1, 8, 8) and ds.classes == ["0", "1", "2"]
    assert ds.train.x.dtype == torch.uint8
    assert np.array_equal(ds.train.x[:, 0].numpy(), ref["x"])
    assert np.array_equal(ds.train.y.numpy(), ref["y"])
    assert np.array_equal(ds.val.x[:, 0].numpy(), ref["tx"])
    assert ds.name == str(tmp_path / "mnist")


def test_idx_without_test_files_is_split(tmp_path):
    make_mnist(tmp_path / "m", test=False)
    ds = load_dataset(tmp_path / "m", val_fraction=0.2)
    check_api(ds)
    assert len(ds.train) == 24 and len(ds.val) == 6
    assert sorted(torch.bincount(ds.val.y).tolist()) == [2, 2, 2]   # stratified


def test_fashion_class_names_from_folder_name(tmp_path):
    make_mnist(tmp_path / "Fashion-MNIST" / "raw")
    ds = load_dataset(str(tmp_path / "Fashion-MNIST"))
    assert ds.classes == ["T-shirt/top", "Trouser", "Pullover"]


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-5], "truncated"),
    (lambda b: b[:10], "truncated"),
    (lambda b: b"\x12\x34" + b[2:], "not an IDX file"),
    (lambda b: b[:2] + b"\x0d" + b[3:], "data type 0x0d"),
    (lambda b: b + b"\0", "more than its header"),
])
def test_damaged_idx_files_are_named(tmp_path, damage, message):
    make_mnist(tmp_path, test=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DatasetError, match=message) as e:
        load_dataset(str(tmp_path))
    assert "train-images-idx3-ubyte" in str(e.value)


def test_truncated_gzip_and_mismatched_counts(tmp_path):
    make_mnist(tmp_path / "a", gz=True, test=False)
    gz = tmp_path / "a" / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:-20])
    with pytest.raises(DatasetError, match="damaged|truncated"):
        load_dataset(str(tmp_path / "a"))
    make_mnist(tmp_path / "b", test=False)
    write_idx(tmp_path / "b" / "train-labels-idx1-ubyte", np.zeros(29, np.uint8))
    with pytest.raises(DatasetError, match="has 30 images but .* 29 labels"):
        load_dataset(str(tmp_path / "b"))
    make_mnist(tmp_path / "c")
    (tmp_path / "c" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError, match="t10k-labels"):
        load_dataset(str(tmp_path / "c"))


# ---------------------------------------------------------------- CIFAR-10


def test_cifar_binary_folder(tmp_path):
    ref = make_cifar(tmp_path / "cifar" / "cifar-10-batches-bin")
    ds = load_dataset(str(tmp_path / "cifar"))
    check_api(ds)
    assert ds.image_shape == (3, 32, 32) and ds.classes == [f"c{i}" for i in range(10)]
    assert np.array_equal(ds.train.x.numpy(), ref["x"])   # R, G, B planes in order
    assert np.array_equal(ds.train.y.numpy(), ref["y"])
    assert np.array_equal(ds.val.x.numpy(), ref["tx"])
    assert len(ds.mean) == 3


def test_cifar_default_names_and_truncation(tmp_path):
    make_cifar(tmp_path, batches=1, meta=False)
    assert load_dataset(str(tmp_path)).classes[:2] == ["airplane", "automobile"]
    batch = tmp_path / "data_batch_1.bin"
    batch.write_bytes(batch.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="truncated"):
        load_dataset(str(tmp_path))


# ---------------------------------------------------------------- image folders


def test_image_folder_grey(tmp_path):
    make_image_folder(tmp_path / "pets", classes=("dog", "cat"), per_class=5)
    ds = load_dataset(str(tmp_path / "pets"), val_fraction=0.2)
    check_api(ds)
    assert ds.classes == ["cat", "dog"]                    # sorted sub-folder names
    assert ds.image_shape == (1, 10, 12)                   # H×W of the images
    assert len(ds.train) == 8 and len(ds.val) == 2
    first = np.asarray(Image.open(tmp_path / "pets" / "cat" / "0.png"))
    all_x = torch.cat([ds.train.x, ds.val.x]).numpy()
    assert any(np.array_equal(img[0], first) for img in all_x)


def test_image_folder_resized_to_rgb_and_grey(tmp_path):
    make_image_folder(tmp_path / "f", mode="RGB")
    ds = load_dataset(str(tmp_path / "f"), image_shape=(3, 16, 20))
    check_api(ds)
    assert ds.image_shape == (3, 16, 20)
    assert load_dataset(str(tmp_path / "f"), image_shape=(1, 6, 6)).image_shape == (1, 6, 6)


def test_image_folder_with_train_and_val_folders(tmp_path):
    make_image_folder(tmp_path / "d" / "train", per_class=3)
    make_image_folder(tmp_path / "d" / "val", per_class=2)
    ds = load_dataset(str(tmp_path / "d"))
    assert ds.classes == ["cat", "dog"] and len(ds.train) == 6 and len(ds.val) == 4


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="is empty"):
        load_dataset(str(tmp_path / "empty"))
    make_image_folder(tmp_path / "mixed", per_class=2)
    Image.new("L", (7, 7)).save(tmp_path / "mixed" / "cat" / "odd.png")
    with pytest.raises(DatasetError, match="pass an image size"):
        load_dataset(str(tmp_path / "mixed"))
    make_image_folder(tmp_path / "hole", per_class=2)
    (tmp_path / "hole" / "bird").mkdir()
    with pytest.raises(DatasetError, match="'bird'.*holds no images"):
        load_dataset(str(tmp_path / "hole"))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="no class sub-folders"):
        load_dataset(str(tmp_path / "junk"))


# ---------------------------------------------------------------- npz


@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW", "float"])
def test_npz_layouts(tmp_path, layout):
    rng = np.random.default_rng(0)
    chw = rng.integers(0, 256, (20, 3, 6, 5), dtype=np.uint8)
    y = np.arange(20) % 4
    x = {"NHW": chw[:, 0], "NHWC": chw.transpose(0, 2, 3, 1), "NCHW": chw,
         "float": chw.astype(np.float32) / 255}[layout]
    np.savez(tmp_path / "d.npz", x=x, y=y, classes=np.array(["a", "b", "c", "d"]))
    ds = load_dataset(str(tmp_path / "d.npz"), val_fraction=0.25)
    check_api(ds)
    assert ds.classes == ["a", "b", "c", "d"]
    want = chw[:, :1] if layout == "NHW" else chw
    assert ds.image_shape == want.shape[1:]
    assert ds.train.x.dtype == (torch.float32 if layout == "float" else torch.uint8)
    got = torch.cat([ds.train.x, ds.val.x]).float()
    if layout != "float":
        got = got / 255
    expected = torch.from_numpy(want).float() / 255
    # every image of the file is in one of the splits, with its label
    order = torch.cat([ds.train.y, ds.val.y])
    assert sorted(order.tolist()) == sorted(y.tolist())
    for img in got:
        assert torch.isclose(expected, img, atol=1e-6).flatten(1).all(1).any()


def test_npz_validation_arrays_and_errors(tmp_path):
    x = np.zeros((6, 4, 4), np.uint8)
    np.savez(tmp_path / "v.npz", x=x, y=np.arange(6) % 2, x_val=x[:2], y_val=[0, 1])
    ds = load_dataset(str(tmp_path / "v.npz"))
    assert len(ds.train) == 6 and len(ds.val) == 2 and ds.classes == ["0", "1"]
    np.savez(tmp_path / "noy.npz", x=x)
    with pytest.raises(DatasetError, match="no array 'y'"):
        load_dataset(str(tmp_path / "noy.npz"))
    np.savez(tmp_path / "hot.npz", x=x.astype(np.float32) + 3, y=np.zeros(6, int))
    with pytest.raises(DatasetError, match="floats in 0..1"):
        load_dataset(str(tmp_path / "hot.npz"))
    np.savez(tmp_path / "n.npz", x=x, y=np.arange(5))
    with pytest.raises(DatasetError, match="6 images but 5 labels"):
        load_dataset(str(tmp_path / "n.npz"))


# ---------------------------------------------------------------- sources


def test_unknown_sources_say_what_is_supported(tmp_path):
    with pytest.raises(DatasetError, match="no dataset 'mnsit'.*did you mean 'mnist'") as e:
        load_dataset("mnsit")
    for name in (*BUILTIN, *DOWNLOADABLE, ".npz", "image folder"):
        assert name in str(e.value)
    with pytest.raises(DatasetError, match="no file or folder"):
        load_dataset(str(tmp_path / "nothing.npz"))
    (tmp_path / "a.csv").write_text("1,2")
    with pytest.raises(DatasetError, match=r"\.npz"):
        load_dataset(str(tmp_path / "a.csv"))


def test_named_set_not_downloaded(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match="mnist is not in .*--download"):
        load_dataset("mnist", root=tmp_path)
    monkeypatch.setenv("CONVAS_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetError, match="cifar10 is not in .*env.*CIFAR-10"):
        load_dataset("CIFAR-10")
    make_mnist(tmp_path / "env" / "fashion-mnist", gz=True)
    ds = load_dataset("fashion_mnist")
    assert ds.name == "fashion-mnist" and ds.classes[0] == "T-shirt/top"


def test_bad_arguments(tmp_path):
    with pytest.raises(DatasetError, match="val_fraction"):
        load_dataset("digits", val_fraction=1.0)
    with pytest.raises(DatasetError, match="no class 'Y'.*X, O"):
        load_dataset("shapes", classes=["X", "Y"], options={"count": 10})
    with pytest.raises(DatasetError, match="no class '11'.*0, 1"):
        load_dataset("digits", classes=["1", "11"])
    with pytest.raises(DatasetError, match="no option 'colour'"):
        load_dataset("shapes", options={"colour": 1})
    with pytest.raises(DatasetError, match="takes no options"):
        load_dataset("digits", options={"size": 3})


# ---------------------------------------------------------------- built-in sets


def test_shapes_deterministic_balanced_and_seeded():
    a = load_dataset("shapes", seed=3, options={"count": 250, "size": 24})
    b = load_dataset("shapes", seed=3, options={"count": 250, "size": 24})
    c = load_dataset("shapes", seed=4, options={"count": 250, "size": 24})
    check_api(a)
    assert a.classes == list(SHAPES_CLASSES) == ["X", "O", "plus", "triangle", "square"]
    assert a.image_shape == (1, 24, 24) and a.train.x.dtype == torch.uint8
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.y, b.val.y)
    assert not torch.equal(a.train.x, c.train.x)
    labels = torch.cat([a.train.y, a.val.y])
    assert torch.bincount(labels).tolist() == [50] * 5
    assert torch.bincount(a.val.y).tolist() == [10] * 5
    assert 0.02 < a.mean[0] < 0.5                          # ink on a dark noisy ground


def test_shapes_default_size_and_count():
    ds = load_dataset("shapes")
    assert ds.image_shape == (1, 32, 32) and len(ds.train) + len(ds.val) == 3000
    assert len(ds.val) == 600


def test_class_subset_relabels_in_given_order():
    ds = load_dataset("shapes", classes=["O", "X"], options={"count": 40})
    assert ds.classes == ["O", "X"] and ds.num_classes == 2
    assert torch.bincount(torch.cat([ds.train.y, ds.val.y])).tolist() == [20, 20]
    full = load_dataset("digits")
    sub = load_dataset("digits", classes=["7", "1"])
    assert sub.classes == ["7", "1"]
    n7 = int((full.train.y == 7).sum() + (full.val.y == 7).sum())
    assert int((sub.train.y == 0).sum() + (sub.val.y == 0).sum()) == n7
    # the pixels of the relabelled 0s are the 7s
    sevens = torch.cat([full.train.x, full.val.x])[torch.cat([full.train.y, full.val.y]) == 7]
    assert sub.train.x[sub.train.y == 0][0].tolist() in sevens.tolist()


def test_digits():
    ds = load_dataset("digits", seed=1)
    check_api(ds)
    assert ds.image_shape == (1, 8, 8) and ds.classes == [str(i) for i in range(10)]
    assert len(ds.train) + len(ds.val) == 1797 and abs(len(ds.val) - 359) <= 10
    assert int(ds.train.x.max()) == 255
    # the split is disjoint and covers the set
    def key(x):
        return {bytes(img.numpy()) for img in x}

    assert len(key(ds.train.x) | key(ds.val.x)) >= 1790 - 50   # digits has a few duplicates
    other = load_dataset("digits", seed=2)
    assert not torch.equal(other.val.x, ds.val.x)


def test_limit_is_stratified_and_mean_std_from_train():
    ds = load_dataset("digits", limit=100, val_limit=50)
    assert len(ds.train) == 100 and len(ds.val) == 50
    counts = torch.bincount(ds.train.y, minlength=10)
    assert counts.min() >= 8 and counts.max() <= 12
    x = ds.train.x.float() / 255
    assert ds.mean[0] == pytest.approx(float(x.mean()), abs=1e-5)
    assert ds.std[0] == pytest.approx(float(x.std(unbiased=False)), abs=1e-5)
    assert torch.equal(load_dataset("digits", limit=100).train.x, ds.train.x)


# ---------------------------------------------------------------- Batches


def small_set(n=50, c=2, h=6, w=7, dtype=torch.uint8, seed=0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
    if dtype == torch.float32:
        x = x.float() / 255
    return ImageSet(x, torch.arange(n))       # label = index, to find samples again


def test_batches_cover_each_sample_once_and_reshuffle():
    data = small_set()
    b = Batches(data, 16, mean=(0.5, 0.5), std=(0.25, 0.25), shuffle=True, seed=1)
    assert len(b) == 4
    epochs = []
    for _ in range(2):
        seen = []
        for x, y in b:
            assert x.dtype == torch.float32 and x.shape[1:] == (2, 6, 7)
            seen.extend(y.tolist())
        assert sorted(seen) == list(range(50))
        epochs.append(seen)
    assert epochs[0] != epochs[1]
    again = Batches(data, 16, mean=(0.5, 0.5), std=(0.25, 0.25), shuffle=True, seed=1)
    assert [y for _, y in again][0].tolist() == epochs[0][:16]   # deterministic per seed
    dropped = Batches(data, 16, mean=(0.5, 0.5), std=(0.25, 0.25), drop_last=True)
    assert len(dropped) == 3 and sum(len(y) for _, y in dropped) == 48
    plain = [y.tolist() for _, y in Batches(data, 20, mean=(0, 0), std=(1, 1))]
    assert plain == [list(range(20)), list(range(20, 40)), list(range(40, 50))]


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_batches_normalise_uint8_and_float_alike(dtype):
    ds = load_dataset("shapes", options={"count": 200})
    data = ds.train if dtype == torch.uint8 else ImageSet(ds.train.x.float() / 255, ds.train.y)
    b = Batches(data, 64, mean=ds.mean, std=ds.std)
    x = torch.cat([xb for xb, _ in b])
    assert abs(float(x.mean())) < 1e-4 and float(x.std()) == pytest.approx(1, abs=1e-3)
    ref = (ds.train.x.float() / 255 - ds.mean[0]) / ds.std[0]
    assert torch.allclose(x, ref, atol=1e-5)
    assert torch.allclose(b.normalize(ds.train.x[0]), ref[0], atol=1e-5)
    assert torch.allclose(b.normalize(ds.train.x[:3].float() / 255), ref[:3], atol=1e-5)


def test_random_crop_shifts_with_zero_padding():
    x = torch.arange(2 * 1 * 4 * 5, dtype=torch.float32).view(2, 1, 4, 5) + 1
    out = random_crop(x, 2, torch.tensor([0, 2]), torch.tensor([1, 2]))
    assert out.shape == x.shape
    assert torch.equal(out[1], x[1])                       # offset = padding: no shift
    assert torch.equal(out[0, :, 2:, 1:], x[0, :, :2, :4])  # moved down 2, right 1
    assert (out[0, :, :2] == 0).all() and (out[0, :, :, 0] == 0).all()


def _candidates(img: torch.Tensor, pad: int) -> list[torch.Tensor]:
    n = 2 * pad + 1
    shifts = [(dy, dx) for dy in range(n) for dx in range(n)]
    return [random_crop(img[None], pad, torch.tensor([dy]), torch.tensor([dx]))[0]
            for dy, dx in shifts]


def test_augmentation_keeps_shape_and_really_changes_pixels():
    data = small_set(n=64, c=1, h=8, w=8)
    unit = data.x.float() / 255
    crop = Batches(data, 32, mean=(0,), std=(1,), shuffle=True,
                   augment=Augment(crop_padding=2))
    changed = 0
    for x, y in crop:
        assert x.shape == (len(y), 1, 8, 8)
        for img, i in zip(x, y.tolist(), strict=True):
            assert any(torch.allclose(img, c) for c in _candidates(unit[i], 2))
            changed += not torch.allclose(img, unit[i])
    assert changed > 40                                   # 24 of 25 offsets shift
    flip = Batches(data, 64, mean=(0,), std=(1,), augment=Augment(hflip=True))
    x, y = next(iter(flip))
    mirrored = [torch.allclose(x[k], unit[k].flip(2)) for k in range(64)]
    same = [torch.allclose(x[k], unit[k]) for k in range(64)]
    assert all(m or s for m, s in zip(mirrored, same, strict=True))
    assert 10 < sum(mirrored) < 54
    assert Augment().active is False and Augment(hflip=True).active


def test_augmented_float_equals_augmented_uint8():
    u8 = small_set(n=20, c=3, h=5, w=5)
    f32 = ImageSet(u8.x.float() / 255, u8.y)
    aug = Augment(crop_padding=1, hflip=True)
    kw = dict(mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.4), shuffle=True, augment=aug, seed=5,
              channels_last=True)
    for (xa, ya), (xb, yb) in zip(Batches(u8, 8, **kw), Batches(f32, 8, **kw), strict=True):
        assert torch.equal(ya, yb) and torch.allclose(xa, xb, atol=1e-5)
        assert xa.is_contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------- download


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A local HTTP server on 127.0.0.1 serving ``tmp_path/www``; yields (folder, base_url)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_Quiet, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_mnist_from_local_server(server, tmp_path, monkeypatch):
    www, url = server
    make_mnist(www, gz=True)
    table = {p.name: md5(p) for p in sorted(www.iterdir())}
    table["t10k-labels-idx1-ubyte.gz"] = hashlib.sha256(
        (www / "t10k-labels-idx1-ubyte.gz").read_bytes()).hexdigest()    # SHA-256 works too
    monkeypatch.setitem(fetch.CHECKSUMS, "mnist", table)
    calls = []
    folder = download("mnist", root=tmp_path / "root", base_url=url,
                      progress=lambda done, total: calls.append((done, total)))
    assert folder == tmp_path / "root" / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(table)
    assert calls and calls[-1][0] == calls[-1][1] > 0
    ds = load_dataset("mnist", root=tmp_path / "root")
    check_api(ds)
    assert len(ds.train) == 30 and len(ds.val) == 9
    # already there: nothing is fetched again
    (www / "train-images-idx3-ubyte.gz").unlink()
    assert download("mnist", root=tmp_path / "root", base_url=url) == folder


def test_download_with_wrong_checksum_leaves_nothing(server, tmp_path, monkeypatch):
    www, url = server
    make_mnist(www, gz=True)
    table = {p.name: md5(p) for p in sorted(www.iterdir())}
    table["train-labels-idx1-ubyte.gz"] = "0" * 32
    monkeypatch.setitem(fetch.CHECKSUMS, "mnist", table)
    with pytest.raises(DatasetError, match="checksum mismatch.*train-labels.*deleted"):
        download("mnist", root=tmp_path / "root", base_url=url)
    left = {p.name for p in (tmp_path / "root" / "mnist").iterdir()}
    assert "train-labels-idx1-ubyte.gz" not in left and not any(".part" in n for n in left)
    with pytest.raises(DatasetError, match="could not download .*missing"):
        monkeypatch.setitem(fetch.CHECKSUMS, "mnist", {"missing.gz": "0" * 32})
        download("mnist", root=tmp_path / "root", base_url=url)


def test_load_dataset_downloads_cifar_archive(server, tmp_path, monkeypatch):
    www, url = server
    src = tmp_path / "src" / "cifar-10-batches-bin"
    ref = make_cifar(src, batches=5)
    (src / "readme.html").write_text("not extracted")
    archive = www / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-bin")
        evil = tarfile.TarInfo("../evil.txt")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
    monkeypatch.setitem(fetch.CHECKSUMS, "cifar10", {archive.name: md5(archive)})
    monkeypatch.setitem(fetch.MIRRORS, "cifar10", (url,))
    ds = load_dataset("cifar10", root=tmp_path / "root", download=True)
    check_api(ds)
    assert len(ds.train) == 50 and np.array_equal(ds.val.x.numpy(), ref["tx"])
    folder = tmp_path / "root" / "cifar10"
    assert not (folder / archive.name).exists()                    # archive removed
    assert not (folder / "cifar-10-batches-bin" / "readme.html").exists()
    assert not (tmp_path / "root" / "evil.txt").exists()
