"""The diagnosis on photograph-like images (chapters/diagnose.md): activation fractions and their warnings, the
measured causes of a γ that is 0 or tiny, centring, fewer images than p, the crop to ``max_patches``, the sweep over
filter sizes and strides, how images were read (RGB, RGBA, 16-bit PNG files) and the command line's new options."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import filterlib as fl
from filterlib.__main__ import main
from filterlib.data.files import LUMA, read_images
from filterlib.data.natural import natural_images
from filterlib.diagnosis import diagnose_sweep

ROOT = Path(__file__).resolve().parent.parent
FAST = dict(n_directions=4, steps=20, progress=False)


@pytest.fixture(scope="module")
def photos():
    """Uncentred 1/f images (mean ≈ 0.57 of the full scale, like 8-bit photographs) and a teacher whose entries
    sum well below zero."""
    x = natural_images(30, 24, seed=3)
    w = torch.randn(9, generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 1.5
    assert float(w.sum()) < -8
    return x, w


# --------------------------------------------------------------------------------------------------------------
# Natural-like images


def test_natural_images_have_a_1_over_f_squared_power_spectrum_and_photo_pixels():
    x = natural_images(40, 64, std=0.05, quantize=False, seed=1)          # small std: no clipping at 0 or 1
    assert x.shape == (40, 64, 64) and x.dtype == torch.float64
    assert float(x.mean()) == pytest.approx(0.57, abs=1e-3) and float(x.std()) == pytest.approx(0.05, rel=0.05)
    power = (torch.fft.fft2(x - x.mean(dim=(1, 2), keepdim=True)).abs() ** 2).mean(0)
    f = torch.fft.fftfreq(64, dtype=torch.float64)
    r = torch.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    band = (r > 0.03) & (r < 0.3)
    slope = np.polyfit(np.log(r[band].numpy()), np.log(power[band].numpy()), 1)[0]
    assert slope == pytest.approx(-2.0, abs=0.15)                            # amplitude 1/f, power 1/f²
    q = natural_images(2, 16, seed=1)
    assert torch.equal(q, torch.round(q * 255) / 255) and torch.equal(q, natural_images(2, 16, seed=1))


# --------------------------------------------------------------------------------------------------------------
# The dead-teacher trap


def test_activation_fractions_equal_a_direct_count(photos):
    x, w = photos
    d = fl.diagnose(x, 3, w_star=w, **FAST)
    Z = fl.patches(x, 3).reshape(-1, 9)
    assert d.activation["teacher_active_fraction"] == pytest.approx(float((Z @ w > 0).double().mean()), abs=1e-15)
    w0 = d.details["w0"]
    assert d.activation["start_active_fraction"] == pytest.approx(float((Z @ w0 > 0).double().mean()), abs=1e-15)
    per_image = (fl.patches(x, 3) @ w > 0).any(dim=1).double().mean()
    assert d.activation["teacher_active_image_fraction"] == pytest.approx(float(per_image))
    out = d.to_dict()
    assert {"teacher_active_fraction", "start_active_fraction"} <= set(out["activation"])


def test_uncentred_photos_a_dead_teacher_is_named_and_centring_revives_it(photos):
    x, w = photos
    d = fl.diagnose(x, 3, w_star=w, **FAST)
    assert d.activation["teacher_active_fraction"] < 0.01
    assert any("dead teacher" in m for m in d.activation["warnings"])
    assert d.patch["gamma"].value == 0
    assert d.causes[0]["cause"] == "dead teacher" and "--center" in d.causes[0]["fix"]
    assert "uncentred pixels" in [c["cause"] for c in d.causes]
    assert d.verdict.startswith("γ(φ₀) is 0 or tiny") and "dead teacher" in d.verdict.split("Theorem")[0]
    text, page = d.table(), d._repr_html_()
    assert "WARNING: the teacher w* is active on only" in text and "not centred" in text
    assert "Warning:" in page and "dead teacher" in page and "Activation." in page
    c = fl.diagnose(x, 3, w_star=w, center=True, **FAST)
    assert c.patch["gamma"].value > 0 and c.theorem_3_2.step_cap is not None
    assert 0.2 < c.activation["teacher_active_fraction"] < 0.8 and not c.activation["warnings"]
    assert c.setup["input"]["center"] is True and abs(c.setup["input"]["pixels"]["mean"]) < 1e-12
    assert not any(cause["cause"] == "dead teacher" for cause in c.causes)


def test_a_linear_teacher_is_warned_about(photos):
    x, w = photos
    d = fl.diagnose(x, 3, w_star=-w, **FAST)                             # entries sum well above 0
    assert d.activation["teacher_active_fraction"] > 0.99
    assert any("linear teacher" in m for m in d.activation["warnings"])


def test_fewer_images_than_p_is_said_not_just_singular():
    x = torch.randn(5, 16, 16, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    d = fl.diagnose(x, 5, **FAST)                                       # p = 25 > 5 images
    g = d.conv["gamma"]
    assert g.value == 0 and "5 images cannot determine a 25-pixel filter" in g.reason
    assert "at least p = 25 images" in g.reason
    assert "fewer images than p" in [c["cause"] for c in d.causes]
    assert "5 images cannot determine a 25-pixel filter" in d.verdict.split("Theorem 3.2")[0]


def test_constant_patches_are_named():
    x = torch.rand(200, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64) - 0.5
    x[:, :, 0] = 0                                                      # a pixel column that never varies
    d = fl.diagnose(x, 8, **FAST)
    assert d.patch["gamma"].value == 0
    blank = [c for c in d.causes if c["cause"] == "constant or blank patches"]
    assert blank and "rank 56 of p = 64" in blank[0]["evidence"]          # 8 of the 64 pixels are always 0


def test_a_healthy_diagnosis_names_no_cause():
    x = torch.randn(200, 3, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    d = fl.diagnose(x, 3, **FAST)
    assert d.causes == [] and not d.verdict.startswith("γ(φ₀) is 0") and d.activation["warnings"] == []


# --------------------------------------------------------------------------------------------------------------
# Large images: the convolutional view within max_patches


def test_large_images_are_cropped_for_the_convolutional_view_and_said_so():
    x = natural_images(12, 48, seed=5)
    d = fl.diagnose(x, 5, center=True, max_patches=3000, n_patches=2000, **FAST)
    crop = d.setup["crop"]
    assert crop is not None and d.setup["n_images"] * d.setup["k"] <= 3000
    assert d.setup["k"] == (crop["side"] - 4) ** 2 and crop["side"] < 48
    assert d.setup["n_patches"] == 2000 and "crop" in d.table()
    assert d.activation["n_patches_counted"] == 12 * 44 * 44            # fractions over the whole images
    same = fl.diagnose(x, 5, center=True, max_patches=None, n_patches=2000, **FAST)
    assert same.setup["crop"] is None and same.setup["k"] == 44 * 44


# --------------------------------------------------------------------------------------------------------------
# The sweep


def test_sweep_entries_equal_separate_runs():
    x = natural_images(20, 16, seed=6) - 0.5
    sweep = diagnose_sweep(x, [2, 3, 4], 1, "gabor", **FAST)
    assert sweep.settings == [(2, 1), (3, 1), (4, 1)]
    out = sweep.to_dict()["sweep"]
    assert len(out) == 3
    for (s, t), entry in zip(sweep.settings, out):
        alone = fl.diagnose(x, s, t, "gabor", **FAST)
        assert entry["filter_size"] == s and entry["diagnosis"] == alone.to_dict()
    assert len(sweep.table().rows) == 3 and sweep.text().count("\n") > 4
    assert "<img" in sweep._repr_html_() and "alt=" in sweep._repr_html_()
    json.dumps(out, allow_nan=False)


def test_sweep_refuses_a_teacher_array_for_several_sizes():
    with pytest.raises(ValueError, match="w_star"):
        diagnose_sweep(np.zeros((3, 8, 8)), [3, 5], w_star=np.ones(9))


# --------------------------------------------------------------------------------------------------------------
# How images were read


def _pngs(tmp_path: Path) -> dict:
    from PIL import Image

    rng = np.random.default_rng(7)
    out = {}
    for mode, shape, dtype in (("RGB", (10, 10, 3), np.uint8), ("RGBA", (10, 10, 4), np.uint8),
                               ("I;16", (10, 10), np.uint16)):
        top = 255 if dtype == np.uint8 else 65535
        arr = rng.integers(0, top + 1, shape).astype(dtype)
        folder = tmp_path / mode.replace(";", "")
        folder.mkdir()
        Image.fromarray(arr).save(folder / "a.png")
        out[mode] = (folder, arr)
    return out


def test_rgb_rgba_and_16_bit_pngs_report_their_conversion(tmp_path):
    for mode, (folder, arr) in _pngs(tmp_path).items():
        x, info = read_images(folder)
        assert info["format"] == "png" and info["files"] == 1 and list(info["modes"]) == [mode]
        if mode in ("RGB", "RGBA"):
            want = arr[..., :3].astype(float) @ np.array([0.299, 0.587, 0.114]) / 255
            assert "grayscale by ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B" in info["conversion"]
            assert ("alpha ignored" in info["conversion"]) == (mode == "RGBA")
            assert "divided by 255" in info["scale"]
        else:
            want = arr / 65535
            assert "16-bit" in info["conversion"] and "65535" in info["scale"]
        np.testing.assert_allclose(x[0], want, rtol=0, atol=1e-12)
        raw, info_none = read_images(folder, scale="none")
        np.testing.assert_allclose(raw[0], want * (65535 if mode == "I;16" else 255), rtol=1e-12)
        assert info_none["scale"].startswith("none")
    assert LUMA == (0.299, 0.587, 0.114)


def test_array_scales(tmp_path):
    np.save(tmp_path / "u8.npy", np.full((2, 4, 4), 255, dtype=np.uint8))
    x, info = read_images(tmp_path / "u8.npy")
    assert x.max() == 255 and info["scale"].startswith("as stored") and info["format"] == "npy"
    x, info = read_images(tmp_path / "u8.npy", scale="unit")
    assert x.max() == 1 and "divided by 255" in info["scale"]
    with pytest.raises(ValueError, match="scale must be one of unit, none"):
        read_images(tmp_path / "u8.npy", scale="percent")


# --------------------------------------------------------------------------------------------------------------
# Command line


def test_cli_reports_conversion_center_and_a_sweep(tmp_path, capsys):
    pngs = _pngs(tmp_path)
    code = main(["diagnose", str(pngs["RGB"][0]), "--filter-size", "3", "--n-directions", "4", "--steps", "10",
                 "--no-progress", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and "luma" in out["setup"]["input"]["conversion"]
    assert "teacher_active_fraction" in out["activation"] and out["setup"]["input"]["center"] is False
    x = natural_images(8, 12, seed=2)
    np.save(tmp_path / "photos.npy", x.numpy())
    argv = ["diagnose", str(tmp_path / "photos.npy"), "--filter-size", "2,3,4", "--stride", "1,2", "--center",
            "--n-directions", "4", "--steps", "10", "--no-progress"]
    assert main(argv + ["--json"]) == 0
    sweep = json.loads(capsys.readouterr().out)["sweep"]
    assert [(e["filter_size"], e["stride"]) for e in sweep] == [(s, t) for s in (2, 3, 4) for t in (1, 2)]
    assert all(e["diagnosis"]["setup"]["input"]["center"] for e in sweep)
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.startswith("Sweep over 6 settings") and "Thm4.1" in text


@pytest.mark.parametrize("extra, words", [
    (["--filter-size", "3,x"], "--filter-size must be a positive integer"),
    (["--filter-size", "3", "--stride", "0"], "--stride must be positive integers"),
    (["--filter-size", "3", "--scale", "percent"], "--scale"),
])
def test_cli_bad_list_options_are_usage_errors(tmp_path, capsys, extra, words):
    np.save(tmp_path / "x.npy", np.zeros((3, 8, 8)))
    with pytest.raises(SystemExit) as exc:
        main(["diagnose", str(tmp_path / "x.npy"), *extra])
    assert exc.value.code == 2 and words in capsys.readouterr().err


@pytest.mark.parametrize("extra, words", [
    (["--filter-size", "3,9"], "filter_size=9 is larger than the images"),
    (["--filter-size", "3", "--max-patches", "-1"], "--max-patches must be ≥ 0"),
    (["--filter-size", "3,4", "--teacher", "w.npy"], "--teacher"),
])
def test_cli_bad_settings_exit_2_with_one_line(tmp_path, capsys, extra, words):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(3, 8, 8)))
    extra = [str(tmp_path / e) if e.endswith(".npy") else e for e in extra]
    code = main(["diagnose", str(tmp_path / "x.npy"), *extra, "--n-directions", "4", "--steps", "5",
                 "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and "Traceback" not in captured.err
    assert captured.err.startswith("python -m filterlib diagnose: error: ") and words in captured.err


def test_cli_subprocess_centre_revives_a_dead_teacher(tmp_path, photos):
    x, w = photos
    np.save(tmp_path / "photos.npy", x.numpy())
    np.save(tmp_path / "w.npy", w.numpy())
    env = {**os.environ, "FILTERLIB_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "filterlib", "diagnose", str(tmp_path / "photos.npy"), "--filter-size", "3",
            "--teacher", str(tmp_path / "w.npy"), "--n-directions", "4", "--steps", "10"]
    procs = [subprocess.Popen(base + extra, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for extra in (["--json"], ["--json", "--center"])]
    dead, alive = (json.loads(p.communicate(timeout=180)[0]) for p in procs)
    assert dead["activation"]["teacher_active_fraction"] < 0.01 and dead["causes"][0]["cause"] == "dead teacher"
    assert dead["patch"]["gamma"]["value"] == 0 and alive["patch"]["gamma"]["value"] > 0
