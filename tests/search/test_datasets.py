"""``cifar10:PATH``, ``mnist:PATH``, ``imagefolder:PATH`` and ``pkg.module:function``, on small
files written here in each real format."""

import gzip
import json
import pickle
import struct
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from search import UsageError
from search.sources import load_data
from tests.search.runs import main_in_process


def write_cifar(root, per_batch=20, *, labels_key=b"labels"):
    """The CIFAR-10 python layout: pickled dicts of bytes keys (as the Python 2 originals load
    with encoding='bytes'), an N x 3072 uint8 array and a list of labels."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [i % 10 for i in range(per_batch)]
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        data[:, :1024] = np.array(labels, dtype=np.uint8)[:, None] * 25  # red plane tells the class
        batch = {b"batch_label": name.encode(), labels_key: labels, b"data": data}
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


def test_cifar10_reads_the_python_batches(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    splits = load_data(f"cifar10:{tmp_path}", image_size=None, seed=0)
    assert splits.input_shape == (3, 32, 32) and splits.num_classes == 10
    assert len(splits.train) + len(splits.val) == 100 and len(splits.val) == 10
    assert sorted(splits.val.y.tolist()) == list(range(10))  # stratified: one of each class
    assert len(splits.test) == 20
    channel_means = splits.train.x.mean(dim=(0, 2, 3))
    assert torch.allclose(channel_means, torch.zeros(3), atol=1e-4)  # normalised per channel
    # The red plane carries the label, as written.
    red = splits.train.x[:, 0, 0, 0]
    assert torch.equal(torch.argsort(red), torch.argsort(splits.train.y.float() + red * 0))
    resized = load_data(f"cifar10:{tmp_path}/cifar-10-batches-py", image_size=16, seed=0)
    assert resized.input_shape == (3, 16, 16)


def test_cifar10_refuses_a_batch_that_would_run_code(tmp_path):
    root = write_cifar(tmp_path)

    class Planted:
        def __reduce__(self):
            return (print, ("pwned",))

    (root / "test_batch").write_bytes(pickle.dumps({b"data": Planted()}, protocol=2))
    with pytest.raises(UsageError, match="test_batch is not a CIFAR-10 python batch.*refused "
                                         r"global \w+\.print: loading it could run code"):
        load_data(f"cifar10:{root}", image_size=None, seed=0)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda root: (root / "data_batch_3").unlink(), "data_batch_3 is missing"),
    (lambda root: (root / "test_batch").write_bytes(b"not a pickle"), "test_batch is not a"),
    (lambda root: (root / "test_batch").write_bytes(pickle.dumps({b"data": [1, 2]})),
     "lacks 'data'"),
])
def test_cifar10_bad_files_say_which(tmp_path, damage, message):
    root = write_cifar(tmp_path)
    damage(root)
    with pytest.raises(UsageError, match=message):
        load_data(f"cifar10:{root}", image_size=None, seed=0)
    with pytest.raises(UsageError, match="no such folder"):
        load_data(f"cifar10:{tmp_path}/nowhere", image_size=None, seed=0)


def _idx_bytes(array):
    """The IDX format MNIST ships in: 0, 0, type 0x08 (unsigned bytes), the number of
    dimensions, each dimension as a big-endian int32, then the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(root, train=100, test=20, size=28, zipped=True):
    """The four files of MNIST (and Fashion-MNIST), gzipped as they are downloaded."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", train), ("t10k", test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, size, size))
        images[:, :4, :] = labels[:, None, None] * 25  # the top rows tell the class
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name, data = f"{prefix}-{kind}-ubyte", _idx_bytes(array)
            if zipped:
                (root / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (root / name).write_bytes(data)
    return root


@pytest.mark.parametrize("zipped", [True, False])
def test_mnist_reads_the_idx_files(tmp_path, zipped):
    write_mnist(tmp_path, zipped=zipped)
    splits = load_data(f"mnist:{tmp_path}", image_size=None, seed=0)
    assert splits.input_shape == (3, 28, 28) and splits.num_classes == 10
    assert len(splits.train) + len(splits.val) == 100 and len(splits.val) == 10
    assert len(splits.test) == 20 and splits.test.y.tolist() == [i % 10 for i in range(20)]
    assert torch.equal(splits.train.x[:, 0], splits.train.x[:, 2])  # grey, repeated
    assert splits.train.x.mean().abs() < 1e-4  # normalised by the training images
    # The class is still in the top rows after normalising: the label maps to one pixel value.
    top = splits.test.x[:, 0, 0, 0]
    assert len(set(zip(splits.test.y.tolist(), top.round(decimals=4).tolist(), strict=True))) == 10
    assert load_data(f"mnist:{tmp_path}", image_size=16, seed=0).input_shape == (3, 16, 16)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda root: (root / "t10k-labels-idx1-ubyte.gz").unlink(),
     r"t10k-labels-idx1-ubyte\[.gz\] is missing"),
    (lambda root: (root / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip"), "cannot be read"),
    (lambda root: (root / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(b"\x00\x00\x0d\x03" + b"\x00" * 20)), "not an IDX file of unsigned bytes"),
    (lambda root: (root / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(_idx_bytes(np.zeros((20, 28, 28)))[:-5])), "not the 15680 its shape"),
    (lambda root: (root / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(_idx_bytes(np.zeros(19)))), "their N labels"),
])
def test_mnist_bad_files_say_which(tmp_path, damage, message):
    root = write_mnist(tmp_path)
    damage(root)
    with pytest.raises(UsageError, match=message):
        load_data(f"mnist:{root}", image_size=None, seed=0)
    with pytest.raises(UsageError, match="no such folder"):
        load_data(f"mnist:{tmp_path}/nowhere", image_size=None, seed=0)


def write_images(root, classes=("cat", "dog", "owl"), per_class=5, size=(20, 12)):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.full((size[1], size[0], 3), 40 * c + i, dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_imagefolder_one_tree_is_split_and_sized_from_its_images(tmp_path):
    write_images(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    splits = load_data(f"imagefolder:{tmp_path}", image_size=None, seed=0)
    assert splits.num_classes == 3
    assert splits.input_shape == (3, 12, 12)  # the first image's shorter side, centre-cropped
    assert (len(splits.train), len(splits.val), len(splits.test)) == (9, 3, 3)
    assert sorted(splits.test.y.tolist()) == [0, 1, 2]
    assert not splits.notes


def test_imagefolder_split_folders_are_used_as_given(tmp_path):
    write_images(tmp_path / "train", per_class=3)
    write_images(tmp_path / "val", per_class=1)
    splits = load_data(f"imagefolder:{tmp_path}", image_size=8, seed=0)
    assert splits.input_shape == (3, 8, 8)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (9, 3, 3)
    assert splits.notes and "no test/ split" in splits.notes[0]


@pytest.mark.parametrize(("setup", "message"), [
    (lambda root: root.mkdir(), "no images in"),
    (lambda root: write_images(root, classes=("only",)), "found 1 class folder"),
    (lambda root: write_images(root, per_class=3), "fewer than 5 images"),
    (lambda root: write_images(root / "train"), "has train/ but no val/"),
])
def test_imagefolder_bad_trees_say_what_is_wrong(tmp_path, setup, message):
    setup(tmp_path / "data")
    with pytest.raises(UsageError, match=message):
        load_data(f"imagefolder:{tmp_path}/data", image_size=None, seed=0)


def test_imagefolder_an_unreadable_image_is_named(tmp_path):
    write_images(tmp_path)
    (tmp_path / "cat" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(UsageError, match=r"cannot read .*broken.png"):
        load_data(f"imagefolder:{tmp_path}", image_size=None, seed=0)


DATA_MODULE = '''
import torch
from torch.utils.data import TensorDataset

def _part(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 12, 12, generator=g), torch.arange(n) % 4

class Named(TensorDataset):
    classes = ["a", "b", "c", "d", "e"]

def three():
    return Named(*_part(16, 0)), TensorDataset(*_part(8, 1)), _part(8, 2)

def two():
    return _part(16, 0), _part(8, 1)

def ragged():
    return _part(16, 0), (torch.randn(8, 1, 10, 10), torch.arange(8) % 4)

def raises():
    raise OSError("the share is not mounted")

def wrong():
    return torch.zeros(3)

def bad_labels():
    return _part(16, 0), (torch.randn(8, 1, 12, 12), torch.full((8,), -1))
'''


@pytest.fixture
def data_module(tmp_path, monkeypatch):
    (tmp_path / "userdata.py").write_text(textwrap.dedent(DATA_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "userdata"
    sys.modules.pop("userdata", None)


def test_a_data_function_gives_the_splits_shape_and_classes(data_module):
    splits = load_data(f"{data_module}:three", image_size=None, seed=0)
    assert splits.input_shape == (1, 12, 12)
    assert splits.num_classes == 5  # from train.classes, not the labels seen
    assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 8, 8)
    two = load_data(f"{data_module}:two", image_size=16, seed=0)
    assert two.input_shape == (1, 16, 16) and two.num_classes == 4
    assert torch.equal(two.test.x, two.val.x) and "no test split" in two.notes[0]
    assert load_data(f"{data_module}:ragged", image_size=12, seed=0).input_shape == (1, 12, 12)


@pytest.mark.parametrize(("name", "message"), [
    ("raises", "the function raised OSError: the share is not mounted"),
    ("wrong", "must return \\(train, val\\) or \\(train, val, test\\)"),
    ("bad_labels", "labels must lie in 0..3"),
    ("ragged", "give --image-size PX"),
    ("missing", "has no 'missing'"),
])
def test_a_bad_data_function_gets_one_line(data_module, name, message):
    with pytest.raises(UsageError, match=message):
        load_data(f"{data_module}:{name}", image_size=None, seed=0)
    with pytest.raises(UsageError, match="cannot import 'no_such_pkg'"):
        load_data("no_such_pkg:splits", image_size=None, seed=0)


@pytest.mark.slow
def test_a_search_on_cifar10_batches_takes_shape_and_classes_from_them(tmp_path):
    write_cifar(tmp_path / "cifar", per_batch=40)
    out = tmp_path / "run"
    result = main_in_process(tmp_path, "--budget-ratio", "0.9", "--model", "resnet20", "--data",
                             "cifar10:cifar", "--trials", "2", "--finetune-steps", "1",
                             "--final-finetune-steps", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["image_size"] is None and config["data"] == "cifar10:cifar"
    model = json.loads(next((out / "models").glob("*.json")).read_text())
    assert model["input_shape"] == [1, 3, 32, 32] and model["num_classes"] == 10


def test_digit_sums_pairs_two_digits_of_one_split_and_labels_their_sum():
    from search.sources import digit_sums, digits

    pairs, single = digit_sums(seed=3), digits(image_size=16, seed=3)
    assert pairs.num_classes == 19 and pairs.input_shape == (3, 16, 16)
    assert [len(s) for s in (pairs.train, pairs.val, pairs.test)] == [3000, 600, 600]
    assert pairs.train.y.min() >= 0 and pairs.train.y.max() <= 18
    assert len(set(pairs.train.y.tolist())) == 19  # every sum occurs
    # The left half of a validation pair is a validation digit squeezed to half the width.
    halves = torch.nn.functional.interpolate(single.val.x, size=(16, 8), mode="bilinear",
                                             align_corners=False)
    left = pairs.val.x[0, :, :, :8]
    match = [i for i in range(len(halves)) if torch.equal(halves[i], left)]
    assert match and any(pairs.val.y[0] - single.val.y[i] in range(10) for i in match)
    assert torch.equal(digit_sums(seed=3).train.x, pairs.train.x)  # the same seed, the same pairs
    assert not torch.equal(digit_sums(seed=4).train.x, pairs.train.x)
