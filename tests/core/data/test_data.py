"""core/data/cifar.py, dataset.py, loading.py, folder.py and synthetic.py: exact pixels and labels from
official-format files, caches, downloads over file:// URLs (never the network), image folders, synthetic data
and stratified subsets."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from core.config import DataConfig
from core.data import cifar
from core.data import folder as folder_data
from core.data.cifar import CIFAR_CACHE_NAME, SPECS, download
from core.data.dataset import (
    Dataset,
    channel_stats,
    clear_memory_cache,
    data_root,
    save_cache,
    stratified_subset,
)
from core.data.loading import dataset_status, load, load_dataset
from core.errors import DataError
from tests.fakes import write_fake_archive, write_fake_cifar, write_image_folder

# torchvision 0.29 warns on each use of its JPEG decoder (core/data/folder.py silences it outside pytest)
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")
UNREACHABLE = "http://127.0.0.1:9/cifar.tar.gz"  # the discard port: refused at once, no network needed


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No memory cache across tests, no URL/md5 overrides or data root from the environment."""
    for var in ("CIFAR_LAB_CIFAR100_URL", "CIFAR_LAB_CIFAR100_MD5", "CIFAR_LAB_CIFAR10_URL", "CIFAR_LAB_CIFAR10_MD5"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CIFAR_LAB_DATA", str(tmp_path / "default-root"))
    clear_memory_cache()
    yield
    clear_memory_cache()


def ref_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = x.astype(np.float64) / 255
    return v.mean(axis=(0, 2, 3)), v.std(axis=(0, 2, 3))


def assert_matches(ds: Dataset, fake) -> None:
    assert ds.train_x.dtype == torch.uint8 and ds.train_x.is_contiguous() and ds.train_y.dtype == torch.int64
    assert np.array_equal(ds.train_x.numpy(), fake.train_x) and np.array_equal(ds.train_y.numpy(), fake.train_y)
    assert np.array_equal(ds.test_x.numpy(), fake.test_x) and np.array_equal(ds.test_y.numpy(), fake.test_y)
    assert ds.classes == fake.classes and ds.image_size == 32
    mean, std = ref_stats(fake.train_x)
    assert np.allclose(ds.mean, mean, atol=1e-12) and np.allclose(ds.std, std, atol=1e-12)


# --- CIFAR pickles -------------------------------------------------------------------------------------------

def test_cifar100_loads_exact_pixels_labels_and_superclasses(tmp_path):
    fake = write_fake_cifar(tmp_path, "cifar100", n_train_per_class=2, n_test_per_class=1, seed=1)
    ds = load_dataset("cifar100", tmp_path)
    assert ds.train_x.shape == (200, 3, 32, 32) and ds.test_x.shape == (100, 3, 32, 32)
    assert_matches(ds, fake)
    assert ds.name == "cifar100" and ds.num_classes == 100 and len(ds.coarse_classes) == 20
    assert ds.coarse_classes == fake.coarse_classes
    assert np.array_equal(ds.train_coarse.numpy(), fake.train_coarse)
    assert np.array_equal(ds.test_coarse.numpy(), fake.test_coarse)


def test_cifar10_joins_its_five_batches_in_order(tmp_path):
    fake = write_fake_cifar(tmp_path, "cifar10", n_train_per_class=3, n_test_per_class=2, seed=2)
    ds = load_dataset("cifar10", tmp_path)
    assert ds.train_x.shape == (30, 3, 32, 32) and ds.test_x.shape == (20, 3, 32, 32)
    assert_matches(ds, fake)
    assert ds.classes[0] == "airplane" and ds.coarse_classes is None and ds.train_coarse is None


def test_second_load_comes_from_memory_then_from_the_pt_cache_until_files_change(tmp_path, monkeypatch):
    fake = write_fake_cifar(tmp_path, "cifar10", 2, 1)
    first = load_dataset("cifar10", tmp_path)
    assert load_dataset("cifar10", tmp_path) is first  # same process: the same tensors, no work
    cache = fake.folder / CIFAR_CACHE_NAME
    assert cache.is_file()

    clear_memory_cache()  # as a new process would: only the .pt file can answer now
    reads = []
    real_read = cifar._read_pickle
    monkeypatch.setattr(cifar, "_read_pickle", lambda path: reads.append(path) or real_read(path))
    again = load_dataset("cifar10", tmp_path)
    assert not reads and torch.equal(again.train_x, first.train_x) and torch.equal(again.test_y, first.test_y)
    assert again.classes == first.classes and again.mean == first.mean

    batch = fake.folder / "data_batch_3"
    later = time.time() + 5
    os.utime(batch, (later, later))  # a source file newer than the cache: decoded again
    assert_matches(load_dataset("cifar10", tmp_path), fake)
    assert batch in reads


def test_a_corrupt_cache_file_is_rebuilt(tmp_path):
    fake = write_fake_cifar(tmp_path, "cifar10", 1, 1)
    cache = fake.folder / CIFAR_CACHE_NAME
    cache.write_bytes(b"not a torch file")
    assert_matches(load_dataset("cifar10", tmp_path), fake)
    assert cache.stat().st_size > 1000


def test_missing_data_without_download_says_where_and_how(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("cifar100", tmp_path / "empty")
    msg = str(e.value)
    assert str(tmp_path / "empty") in msg and "python -m core download cifar100" in msg
    assert "cifar-100-python.tar.gz" in msg


def test_unreadable_pickles_raise_data_error(tmp_path):
    fake = write_fake_cifar(tmp_path, "cifar10", 1, 1)
    (fake.folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DataError, match="unreadable"):
        load_dataset("cifar10", tmp_path)


def test_unknown_dataset_name():
    with pytest.raises(DataError, match="folder:PATH"):
        load_dataset("imagenet")


# --- download ------------------------------------------------------------------------------------------------

@pytest.fixture
def served(tmp_path, monkeypatch):
    """A fake cifar100 archive behind a file:// URL, with its md5 set as the expected one."""
    archive, md5, fake = write_fake_archive(tmp_path / "server", "cifar100", n_train_per_class=3, seed=3)
    monkeypatch.setenv("CIFAR_LAB_CIFAR100_URL", archive.as_uri())
    monkeypatch.setenv("CIFAR_LAB_CIFAR100_MD5", md5)
    return archive, md5, fake


def test_download_checks_md5_extracts_and_reports_progress(tmp_path, served, monkeypatch):
    archive, _, fake = served
    monkeypatch.setattr(cifar, "DOWNLOAD_CHUNK", 64 << 10)  # several progress steps for a small file
    calls: list[tuple[int, int | None]] = []
    root = tmp_path / "root"
    ds = load_dataset("cifar100", root, download=True, progress=lambda done, total: calls.append((done, total)))
    assert_matches(ds, fake)
    size = archive.stat().st_size
    done = [d for d, _ in calls]
    assert len(calls) > 3 and done == sorted(done) and done[0] == 0 and done[-1] == size
    assert all(total == size for _, total in calls)
    assert (root / "cifar-100-python.tar.gz").is_file()
    assert sorted(p.name for p in root.iterdir()) == ["cifar-100-python", "cifar-100-python.tar.gz"]  # no leftovers
    assert dataset_status("cifar100", root).ready
    assert download("cifar100", root) == root / "cifar-100-python"  # already there: nothing to do


def test_wrong_md5_is_a_checksum_error_and_the_bad_download_is_deleted(tmp_path, served, monkeypatch):
    monkeypatch.setenv("CIFAR_LAB_CIFAR100_MD5", "0" * 32)
    root = tmp_path / "root"
    with pytest.raises(DataError, match="checksum") as e:
        download("cifar100", root)
    assert "0" * 32 in str(e.value) and "corrupt or truncated" in str(e.value)
    assert not (root / "cifar-100-python.tar.gz").exists() and not (root / "cifar-100-python").exists()


def test_truncated_archive_is_a_data_error(tmp_path, served, monkeypatch):
    archive, _, _ = served
    cut = archive.with_name("cut.tar.gz")
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    monkeypatch.setenv("CIFAR_LAB_CIFAR100_URL", cut.as_uri())
    monkeypatch.setenv("CIFAR_LAB_CIFAR100_MD5", hashlib.md5(cut.read_bytes()).hexdigest())  # passes; unpacking fails
    root = tmp_path / "root"
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_dataset("cifar100", root, download=True)
    assert not (root / "cifar-100-python").exists()
    assert not any(p.name.startswith(".extract") for p in root.iterdir())


def test_an_archive_copied_into_the_root_is_used_without_network(tmp_path, served, monkeypatch):
    archive, _, fake = served
    monkeypatch.setenv("CIFAR_LAB_CIFAR100_URL", UNREACHABLE)
    root = tmp_path / "root"
    root.mkdir()
    (root / archive.name).write_bytes(archive.read_bytes())
    status = dataset_status("cifar100", root)
    assert not status.ready and "no network" in status.message
    assert_matches(load_dataset("cifar100", root), fake)  # download=False: the archive is enough


def test_a_copied_archive_with_a_bad_checksum_is_kept_and_reported(tmp_path, served):
    root = tmp_path / "root"
    root.mkdir()
    (root / "cifar-100-python.tar.gz").write_bytes(b"half a file")
    with pytest.raises(DataError, match="Delete it"):
        load_dataset("cifar100", root)
    assert (root / "cifar-100-python.tar.gz").exists()


def test_unreachable_url_says_offline_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR_LAB_CIFAR10_URL", UNREACHABLE)
    root = tmp_path / "root"
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", root, download=True)
    msg = str(e.value)
    assert "No network" in msg and UNREACHABLE in msg and "cifar-10-python.tar.gz" in msg and str(root) in msg
    assert str(root / "cifar-10-batches-py" / "data_batch_1") in msg
    assert not any(root.iterdir())  # no .part left behind


def test_dataset_status_before_and_after(tmp_path):
    status = dataset_status("cifar100", tmp_path)
    assert not status.ready and status.path == str(tmp_path) and status.archive == "cifar-100-python.tar.gz"
    assert status.url == SPECS["cifar100"].url and status.size_mb == pytest.approx(169.0)
    write_fake_cifar(tmp_path, "cifar100", 1, 1)
    status = dataset_status("cifar100", tmp_path)
    assert status.ready and status.path == str(tmp_path / "cifar-100-python")
    assert dataset_status("synthetic").ready


def test_data_root_order(tmp_path, monkeypatch):
    assert data_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("CIFAR_LAB_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("CIFAR_LAB_DATA")
    monkeypatch.chdir(tmp_path)
    assert data_root() == tmp_path / "data"


# --- image folders ---------------------------------------------------------------------------------------------

def jpeg_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def image_folder(tmp_path):
    """3 classes (PNG, one 40x40 JPEG class) + 2 broken images + 1 text file that is not an image at all."""
    root = tmp_path / "pets"
    written = write_image_folder(root, {"dog": (3, 2), "cat": (2, 1)})
    big = write_image_folder(root, {"zebra": (2, 1)}, size=40, fmt="jpg", seed=1)
    (root / "train" / "cat" / "broken.jpg").write_bytes(b"this is not a jpeg")
    png = (root / "train" / "dog" / "0000.png").read_bytes()
    (root / "test" / "dog" / "cut.PNG").write_bytes(png[: len(png) // 2])  # truncated, upper-case extension
    (root / "train" / "dog" / "notes.txt").write_text("not an image")
    return root, written, big


def pil_reference(path) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        return np.asarray(im.resize((32, 32), Image.BILINEAR) if im.size != (32, 32) else im).transpose(2, 0, 1)


def test_folder_loads_sorted_classes_exact_pixels_and_counts_broken_files(image_folder):
    root, written, _ = image_folder
    calls = []
    ds = load_dataset(f"folder:{root}", progress=lambda d, t: calls.append((d, t)))
    assert ds.name == f"folder:{root}" and ds.classes == ("cat", "dog", "zebra") and ds.skipped == 2
    assert ds.train_x.shape == (7, 3, 32, 32) and ds.test_x.shape == (4, 3, 32, 32)
    assert ds.train_y.tolist() == [0, 0, 1, 1, 1, 2, 2] and ds.test_y.tolist() == [0, 1, 1, 2]
    # PNG is lossless: the exact pixels written, in file-name order
    expected = [written["train"]["cat"][0], written["train"]["cat"][1], *written["train"]["dog"]]
    assert np.array_equal(ds.train_x[:5].numpy(), np.stack(expected).transpose(0, 3, 1, 2))
    # 40x40 JPEGs: what PIL decodes and bilinearly resizes
    zebra = sorted((root / "train" / "zebra").iterdir())
    assert np.array_equal(ds.train_x[5:].numpy(), np.stack([pil_reference(p) for p in zebra]))
    mean, std = ref_stats(ds.train_x.numpy())
    assert np.allclose(ds.mean, mean) and np.allclose(ds.std, std)
    assert calls[0] == (0, 13) and calls[-1] == (13, 13)  # 11 good + 2 broken image files


def test_small_jpegs_decode_exactly_as_pil_does(tmp_path):
    rng = np.random.default_rng(5)
    for split, n in (("train", 6), ("test", 2)):
        d = tmp_path / "jpg" / split / "only"
        d.mkdir(parents=True)
        for i in range(n):
            (d / f"{i}.jpeg").write_bytes(jpeg_bytes(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)))
    ds = load_dataset(f"folder:{tmp_path / 'jpg'}")
    files = sorted((tmp_path / "jpg" / "train" / "only").iterdir())
    assert np.array_equal(ds.train_x.numpy(), np.stack([pil_reference(p) for p in files]))


def test_folder_cache_is_used_then_invalidated_by_a_new_image(image_folder, monkeypatch):
    root, _, _ = image_folder
    first = load_dataset(f"folder:{root}")
    assert (root / folder_data.CACHE_NAME).is_file()
    clear_memory_cache()
    monkeypatch.setattr(folder_data, "_decode_all", lambda *a: pytest.fail("decoded again"))
    again = load_dataset(f"folder:{root}")
    assert torch.equal(again.train_x, first.train_x) and again.skipped == 2 and again.classes == first.classes
    write_image_folder(root / "more", {"x": (1, 0)})
    os.replace(root / "more" / "train" / "x" / "0000.png", root / "train" / "cat" / "new.png")
    with pytest.raises(pytest.fail.Exception, match="decoded again"):
        load_dataset(f"folder:{root}")


def test_read_only_folder_caches_under_the_data_root(image_folder, monkeypatch, tmp_path):
    root, _, _ = image_folder
    real_save = save_cache

    def save(path, ds, signature):  # the image folder refuses writes (root ignores chmod, so simulate it)
        return False if path.parent == root else real_save(path, ds, signature)

    monkeypatch.setattr(folder_data, "save_cache", save)
    load_dataset(f"folder:{root}", root=tmp_path / "droot")
    assert not (root / folder_data.CACHE_NAME).exists()
    assert len(list((tmp_path / "droot" / "folder-cache").glob("*.pt"))) == 1
    clear_memory_cache()
    monkeypatch.setattr(folder_data, "_decode_all", lambda *a: pytest.fail("decoded again"))
    assert load_dataset(f"folder:{root}", root=tmp_path / "droot").skipped == 2


def test_every_class_needs_a_test_image(tmp_path):
    write_image_folder(tmp_path / "f", {"ant": (2, 1), "bee": (2, 0)})
    with pytest.raises(DataError, match="'bee'.*test"):
        load_dataset(f"folder:{tmp_path / 'f'}")


def test_a_class_whose_only_test_image_is_broken_is_named(tmp_path):
    write_image_folder(tmp_path / "f", {"ant": (2, 1), "bee": (2, 0)})
    (tmp_path / "f" / "test" / "bee").mkdir(exist_ok=True)
    (tmp_path / "f" / "test" / "bee" / "x.png").write_bytes(b"broken")
    with pytest.raises(DataError, match="'bee' has no readable test images"):
        load_dataset(f"folder:{tmp_path / 'f'}")


def test_test_classes_must_be_train_classes(tmp_path):
    write_image_folder(tmp_path / "f", {"ant": (1, 1)})
    write_image_folder(tmp_path / "g", {"wasp": (0, 1)})
    os.replace(tmp_path / "g" / "test" / "wasp", tmp_path / "f" / "test" / "wasp")
    with pytest.raises(DataError, match="'wasp'"):
        load_dataset(f"folder:{tmp_path / 'f'}")


@pytest.mark.parametrize("layout", ["empty", "no-test", "no-classes", "missing"])
def test_bad_folder_layouts_explain_the_expected_one(tmp_path, layout):
    root = tmp_path / "f"
    if layout != "missing":
        root.mkdir()
    if layout in ("no-test", "no-classes"):
        (root / "train" / ("cat" if layout == "no-test" else "")).mkdir(parents=True, exist_ok=True)
    if layout == "no-classes":
        (root / "test").mkdir()
    with pytest.raises(DataError, match=r"train/<class>/\*\.jpg"):
        load_dataset(f"folder:{root}")
    status = dataset_status(f"folder:{root}")
    assert not status.ready and "train/<class>" in status.message


def test_folder_status_when_ready(image_folder, tmp_path):
    root, _, _ = image_folder
    status = dataset_status(f"folder:{root}", tmp_path / "droot")
    assert status.ready and "3 classes" in status.message and status.path == str(root)


# --- synthetic ---------------------------------------------------------------------------------------------------

def test_synthetic_is_deterministic_balanced_and_learnable_but_not_trivial():
    ds = load_dataset("synthetic")
    assert load_dataset("synthetic") is ds
    from core.data.synthetic import make_synthetic

    other = make_synthetic()
    assert torch.equal(ds.train_x, other.train_x) and torch.equal(ds.test_y, other.test_y)
    assert ds.train_x.shape == (5000, 3, 32, 32) and ds.test_x.shape == (1000, 3, 32, 32)
    assert len(set(ds.classes)) == 10 == ds.num_classes
    assert torch.bincount(ds.train_y).tolist() == [500] * 10 and torch.bincount(ds.test_y).tolist() == [100] * 10
    assert len(torch.unique(ds.train_x.flatten(1), dim=0)) == 5000  # no repeated image
    x, xt = ds.train_x.flatten(1).float(), ds.test_x.flatten(1).float()
    means = torch.stack([x[ds.train_y == c].mean(0) for c in range(10)])
    accuracy = (torch.cdist(xt, means).argmin(1) == ds.test_y).float().mean().item()
    assert 0.3 < accuracy < 0.8  # far above chance from pixels alone, far from solved by them
    mean, std = ref_stats(ds.train_x.numpy())
    assert np.allclose(ds.mean, mean) and np.allclose(ds.std, std)


# --- subsets --------------------------------------------------------------------------------------------------

def indexed_dataset(counts: list[int], test_counts: list[int]) -> Dataset:
    """Image i of each split holds its own index in channels 0-1, so a subset can be traced back."""
    def split(per_class):
        y = torch.cat([torch.full((n,), c, dtype=torch.int64) for c, n in enumerate(per_class)])
        y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(9))]
        x = torch.zeros(len(y), 3, 32, 32, dtype=torch.uint8)
        x[:, 0] = (torch.arange(len(y)) % 256).view(-1, 1, 1).to(torch.uint8)
        x[:, 1] = (torch.arange(len(y)) // 256).view(-1, 1, 1).to(torch.uint8)
        return x, y
    (x, y), (xt, yt) = split(counts), split(test_counts)
    classes = tuple(f"c{i}" for i in range(len(counts)))
    return Dataset("t", x, y, xt, yt, classes, (0.5,) * 3, (0.25,) * 3, ("all",), y * 0, yt * 0)


def origin(x: torch.Tensor) -> torch.Tensor:
    return x[:, 0, 0, 0].long() + 256 * x[:, 1, 0, 0].long()


def test_stratified_subset_counts_traceability_and_determinism():
    ds = indexed_dataset([300, 300, 300, 300], [50, 50, 50, 50])
    state = torch.get_rng_state()
    sub = stratified_subset(ds, train=402, test=40, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    assert torch.bincount(sub.train_y).tolist() == [100] * 4 and torch.bincount(sub.test_y).tolist() == [10] * 4
    idx = origin(sub.train_x)
    assert len(idx.unique()) == 400 and torch.equal(ds.train_y[idx], sub.train_y)  # real, distinct images
    assert not torch.equal(sub.train_y, sub.train_y.sort().values)  # shuffled, not grouped by class
    same = stratified_subset(ds, train=402, test=40, seed=3)
    assert torch.equal(same.train_x, sub.train_x) and torch.equal(same.test_y, sub.test_y)
    assert not torch.equal(stratified_subset(ds, train=402, seed=4).train_x, sub.train_x)
    assert sub.mean == ds.mean and sub.classes == ds.classes and sub.train_coarse.shape == (400,)


def test_stratified_subset_edges():
    ds = indexed_dataset([50, 5, 50], [4, 4, 4])
    assert stratified_subset(ds, None, 100) is ds  # nothing to cut
    small = stratified_subset(ds, train=60)  # 20 per class, but class 1 has only 5: all of them
    assert torch.bincount(small.train_y).tolist() == [20, 5, 20] and small.test_x is ds.test_x
    with pytest.raises(DataError, match="at least 3"):
        stratified_subset(ds, train=2)


def test_subset_keeps_cifar100_superclasses_aligned(tmp_path):
    write_fake_cifar(tmp_path, "cifar100", n_train_per_class=3, n_test_per_class=2)
    ds = load_dataset("cifar100", tmp_path)
    sub = stratified_subset(ds, train=200, test=100, seed=1)
    assert torch.bincount(sub.train_y, minlength=100).tolist() == [2] * 100
    assert torch.equal(sub.train_coarse, sub.train_y // 5) and torch.equal(sub.test_coarse, sub.test_y // 5)


def test_load_applies_the_config_subsets_but_keeps_full_split_stats(tmp_path):
    full = load_dataset("synthetic")
    ds = load(DataConfig(dataset="synthetic", subset=100, test_subset=50), seed=1)
    assert len(ds.train_y) == 100 and len(ds.test_y) == 50 and ds.mean == full.mean and ds.std == full.std


def test_channel_stats_is_exact():
    x = torch.randint(0, 256, (7, 3, 5, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    mean, std = channel_stats(x)
    ref_mean, ref_std = ref_stats(x.numpy())
    assert np.allclose(mean, ref_mean, atol=1e-14) and np.allclose(std, ref_std, atol=1e-14)


def test_dataset_is_frozen(tmp_path):
    ds = indexed_dataset([2, 2], [1, 1])
    with pytest.raises(AttributeError):
        ds.name = "x"
    assert replace(ds, name="y").name == "y"


def test_dataset_facts_are_what_loading_the_dataset_gives(tmp_path):
    """dataset_facts(name) knows classes and split sizes without decoding; the oracle is the loaded dataset."""
    from core.data.loading import dataset_facts, load_dataset

    synthetic = load_dataset("synthetic")
    facts = dataset_facts("synthetic")
    assert (facts.num_classes, facts.train_images, facts.test_images) == (
        synthetic.num_classes, len(synthetic.train_y), len(synthetic.test_y))
    write_image_folder(tmp_path / "pets", {"dog": (3, 2), "cat": (2, 1)})
    pets = load_dataset(f"folder:{tmp_path / 'pets'}")
    facts = dataset_facts(f"folder:{tmp_path / 'pets'}")
    assert (facts.num_classes, facts.train_images, facts.test_images, facts.mean) == (2, 5, 3, None)
    assert (pets.num_classes, len(pets.train_y), len(pets.test_y)) == (2, 5, 3)
    c100, c10 = dataset_facts("cifar100"), dataset_facts("cifar10")  # the official archives' sizes, published stats
    assert (c100.num_classes, c100.train_images, c100.test_images) == (100, 50_000, 10_000)
    assert (c10.num_classes, c10.mean) == (10, (0.4914, 0.4822, 0.4465))
    with pytest.raises(DataError, match="unknown dataset"):
        dataset_facts("mnist")
    with pytest.raises(DataError):
        dataset_facts(f"folder:{tmp_path / 'nowhere'}")


def test_folder_summary_lists_the_files_again_only_when_a_folder_changed(image_folder, monkeypatch):
    # the sidebar and every page ask for a folder's counts on each rerun: thirty students, a 60,000-file listing
    root, _, _ = image_folder
    listed = []
    scan = folder_data._scan
    monkeypatch.setattr(folder_data, "_scan", lambda path: listed.append(path) or scan(path))
    first = folder_data.folder_summary(root)
    assert (first.train_images, first.test_images) == (7 + 1, 4 + 1)  # the broken files are images by name
    assert folder_data.folder_summary(root) == first and len(listed) == 1  # unchanged: not listed again
    new = root / "train" / "cat" / "zz-new.png"
    new.write_bytes((root / "train" / "cat" / "0000.png").read_bytes())
    os.utime(root / "train" / "cat", ns=(1, 1))  # a folder's time can sit in the same clock tick on a fast disk
    assert folder_data.folder_summary(root).train_images == 9 and len(listed) == 2
    (root / "test" / "dog" / "0000.png").unlink()
    os.utime(root / "test" / "dog", ns=(2, 2))
    assert folder_data.folder_summary(root).test_images == 4 and len(listed) == 3
    shutil.rmtree(root / "test")
    with pytest.raises(DataError, match="test is missing"):
        folder_data.folder_summary(root)
