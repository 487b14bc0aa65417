"""Download MNIST, Fashion-MNIST and CIFAR-10 on request, checksum verified.

Nothing here touches the network until ``download`` is called. Each file goes to a
temporary name in the target folder and is renamed only once its checksum matches,
so an interrupted or corrupted download never leaves a file that looks complete.
``MIRRORS`` and ``CHECKSUMS`` are module-level tables so tests can point them at a
local server and fixture files.

Checksums are the published ones: MNIST and Fashion-MNIST as in torchvision's
``torchvision/datasets/mnist.py``; CIFAR-10's binary archive as on the dataset's page
(https://www.cs.toronto.edu/~kriz/cifar.html).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from .cifar import SUBFOLDER, cifar_folder
from .idx import idx_folder
from .sets import DatasetError

DOWNLOADABLE: tuple[str, ...] = ("mnist", "fashion-mnist", "cifar10")

MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
}

# file name → MD5 (32 hex digits) or SHA-256 (64 hex digits).
CHECKSUMS: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "cifar10": {
        "cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530",
    },
}

# Archives are unpacked and removed; only these members are taken out of them.
_ARCHIVE_MEMBERS = re.compile(
    rf"{SUBFOLDER}/(data_batch_[1-5]\.bin|test_batch\.bin|batches\.meta\.txt)")
_CHUNK = 1 << 20
_TIMEOUT_S = 60

Progress = Callable[[int, int], None]


class ChecksumError(DatasetError):
    """A downloaded file whose checksum is not the published one (it has been deleted)."""


def default_root() -> Path:
    """Where named data sets live: ``$CONVAS_DATA`` or ``~/.cache/convas/datasets``."""
    env = os.environ.get("CONVAS_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "convas" / "datasets"


def dataset_folder(name: str, root: str | os.PathLike | None = None) -> Path:
    """``root/<name>``: the folder a named data set is read from and downloaded to."""
    return (Path(root).expanduser() if root is not None else default_root()) / name


def is_downloaded(name: str, folder: Path) -> bool:
    """True where ``folder`` already holds readable files of ``name``."""
    if name == "cifar10":
        where = cifar_folder(folder)
        return where is not None and (where / "data_batch_5.bin").is_file()
    return idx_folder(folder) is not None


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _algorithm(expected: str) -> str:
    algorithm = {32: "md5", 64: "sha256"}.get(len(expected))
    if algorithm is None or not re.fullmatch(r"[0-9a-fA-F]+", expected):
        raise ValueError(f"checksum {expected!r} is neither MD5 nor SHA-256 hex")
    return algorithm


def _matches(path: Path, expected: str) -> bool:
    return path.is_file() and file_digest(path, _algorithm(expected)) == expected.lower()


def _fetch(url: str, target: Path, expected: str, progress: Progress | None) -> None:
    """Download ``url`` to ``target`` through a temporary file, verified before renaming."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                    suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as r:
            total = int(r.headers.get("Content-Length") or 0)
            done = 0
            if progress:
                progress(done, total)
            while chunk := r.read(_CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        algorithm = _algorithm(expected)
        got = file_digest(tmp, algorithm)
        if got != expected.lower():
            raise ChecksumError(f"checksum mismatch for {target.name} from {url}: {algorithm} "
                               f"is {got}, expected {expected.lower()}; the file was deleted. "
                               "Try again later, or download it by hand into "
                               f"{target.parent}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _download_file(name: str, filename: str, folder: Path, mirrors: tuple[str, ...],
                   progress: Progress | None) -> Path:
    target = folder / filename
    expected = CHECKSUMS[name][filename]
    if _matches(target, expected):
        return target
    failure: DatasetError | None = None
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            _fetch(url, target, expected, progress)
            return target
        except ChecksumError as e:
            failure = e
        except (urllib.error.URLError, OSError) as e:
            failure = DatasetError(f"could not download {url}: "
                                   f"{getattr(e, 'reason', None) or e}. Check the network "
                                   f"connection, or put {filename} into {folder} by hand")
    assert failure is not None
    raise failure


def _extract(archive: Path, folder: Path) -> None:
    """Take the expected regular files out of ``archive``; nothing else is written."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                path = PurePosixPath(member.name)
                if not member.isfile() or not _ARCHIVE_MEMBERS.fullmatch(path.as_posix()):
                    continue
                target = folder.joinpath(*path.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".part")
                try:
                    with os.fdopen(fd, "wb") as out, source:
                        shutil.copyfileobj(source, out, _CHUNK)
                    os.replace(tmp_name, target)
                finally:
                    Path(tmp_name).unlink(missing_ok=True)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DatasetError(f"cannot unpack {archive}: {e}; delete it and download again") \
            from None


def download(name: str, root: str | os.PathLike | None = None, *,
             base_url: str | None = None, progress: Progress | None = None) -> Path:
    """Fetch ``name`` (one of ``DOWNLOADABLE``) into ``root/<name>`` and return that folder.

    Files already there with the right checksum are kept. ``base_url`` replaces the
    official mirrors (tests serve fixture files from a local server). ``progress`` is
    called with (bytes so far, total bytes or 0 where the server does not say).
    """
    key = name.lower()
    if key not in DOWNLOADABLE:
        raise DatasetError(f"cannot download {name!r}: downloadable sets are "
                           f"{', '.join(DOWNLOADABLE)}")
    folder = dataset_folder(key, root)
    if key == "cifar10" and is_downloaded(key, folder):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    mirrors = (base_url,) if base_url else MIRRORS[key]
    for filename in CHECKSUMS[key]:
        path = _download_file(key, filename, folder, mirrors, progress)
        if filename.endswith((".tar.gz", ".tgz", ".tar")):
            _extract(path, folder)
            path.unlink()
    if not is_downloaded(key, folder):
        raise DatasetError(f"the files downloaded into {folder} do not form {name}: "
                           "delete the folder and download again")
    return folder
