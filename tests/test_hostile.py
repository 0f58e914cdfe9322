"""``python -m filterlib diagnose`` against hostile and careless files: every bad input is exit status 2 with one line
that names the user's file or option (never a traceback), and every valid input gives a report without NaN or inf.

The files are crafted here: .npy headers that declare terabytes, PNG headers of a decompression bomb, pixels and
teachers of 1e±200, nearly constant images, a step that makes gradient descent diverge, seeds beyond 64 bits.
Most cases call :func:`filterlib.__main__.main` in this process; a few run the real command in subprocesses.
"""
from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import filterlib as fl
from filterlib.__main__ import main
from filterlib.data import load_images, load_teacher
from filterlib.diagnosis.steps import iterations_to

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--n-directions", "4", "--steps", "20"]
NOT_A_NUMBER = re.compile(r"\b(nan|inf|NaN|Infinity|-inf)\b")


def npy_header(shape, descr="<f8") -> bytes:
    """An .npy file of 136 bytes whose header declares ``shape`` (and holds 8 bytes of data)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 8


def png_header(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes that declares width×height 8-bit gray pixels (Pillow reads the size from it)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def run_main(argv, capsys):
    code = main(["diagnose", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code, out, err, *needles):
    assert code == 2, err
    assert out == ""
    assert err.startswith("python -m filterlib diagnose: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(1)
    (tmp / "huge.npy").write_bytes(npy_header((100_000, 100_000, 1000)))          # 72.8 TiB declared
    with zipfile.ZipFile(tmp / "huge.npz", "w") as z:
        z.writestr("images.npy", npy_header((100_000, 100_000, 1000)))
    (tmp / "truncated.npy").write_bytes(npy_header((20, 10, 10)))                  # 16000 bytes declared, 8 held
    np.save(tmp / "small.npy", rng.normal(size=(12, 10, 10)))
    np.save(tmp / "positive.npy", rng.random((12, 10, 10)))
    np.save(tmp / "huge_pixels.npy", rng.normal(size=(12, 10, 10)) * 1e200)
    np.save(tmp / "tiny_pixels.npy", rng.normal(size=(12, 10, 10)) * 1e-200)
    np.save(tmp / "complex.npy", rng.normal(size=(3, 8, 8)) + 1j)
    for name, value in (("huge", 1e200), ("tiny", 1e-200)):
        np.save(tmp / f"teacher_{name}.npy", np.full((3, 3), value))
    (tmp / "teacher_declared.npy").write_bytes(npy_header((10**9, 10**9)))
    np.savez(tmp / "teacher_two.npz", a=np.ones((3, 3)), b=np.ones((3, 3)))
    np.savez(tmp / "teacher_named.npz", teacher=np.arange(1.0, 10.0).reshape(3, 3), other=np.zeros(2))
    for name, (w, h) in {"bomb": (20_000, 10_000), "warn": (10_000, 9_000), "big": (5_000, 5_000)}.items():
        (tmp / name).mkdir()
        (tmp / name / "a.png").write_bytes(png_header(w, h))
    (tmp / "two_big").mkdir()
    for name in ("a.png", "b.png"):
        (tmp / "two_big" / name).write_bytes(png_header(3_000, 3_000))             # 72 MB as float64 each
    np.save(tmp / "constant.npy", 1 + 1e-4 * np.random.default_rng(1).normal(size=(50, 12, 12)))
    return tmp


# ---------------------------------------------------------------------------------------------- declared sizes

@pytest.mark.parametrize("name", ["huge.npy", "huge.npz"])
def test_a_header_declaring_terabytes_is_refused_before_allocation(files, capsys, name):
    code, out, err = run_main([files / name, "--filter-size", "3"], capsys)
    assert_one_line_error(code, out, err, str(files / name), "72.8 TiB", "limit of 2 GiB", "--max-bytes",
                          "FILTERLIB_MAX_BYTES")


def test_the_limit_can_be_lowered_and_raised(files, capsys, monkeypatch):
    small = files / "small.npy"                                                     # 9.4 KiB of float64
    code, out, err = run_main([small, "--filter-size", "3", "--max-bytes", "4K"], capsys)
    assert_one_line_error(code, out, err, str(small), "limit of 4 KiB")
    monkeypatch.setenv("FILTERLIB_MAX_BYTES", "4K")
    code, out, err = run_main([small, "--filter-size", "3"], capsys)
    assert_one_line_error(code, out, err, "limit of 4 KiB")
    assert load_images(small, max_bytes=10_000).shape == (12, 10, 10)              # the option wins over the variable
    monkeypatch.setenv("FILTERLIB_MAX_BYTES", "a lot")
    code, out, err = run_main([small, "--filter-size", "3"], capsys)
    assert_one_line_error(code, out, err, "FILTERLIB_MAX_BYTES must be a positive number of bytes", "'a lot'")
    code, out, err = run_main([small, "--filter-size", "3", "--max-bytes", "-5"], capsys)
    assert_one_line_error(code, out, err, "--max-bytes must be a positive number of bytes")


def test_a_truncated_file_is_refused_before_allocation(files, capsys):
    code, out, err = run_main([files / "truncated.npy", "--filter-size", "3"], capsys)
    assert_one_line_error(code, out, err, str(files / "truncated.npy"), "truncated")


# ------------------------------------------------------------------------------------------------------- PNGs

@pytest.mark.parametrize("name", ["bomb", "warn"])
def test_a_decompression_bomb_names_the_file(files, capsys, name):
    code, out, err = run_main([files / name, "--filter-size", "3"], capsys)
    assert_one_line_error(code, out, err, str(files / name / "a.png"), "decompression bomb")


def test_png_pixels_are_checked_against_the_limit_before_decoding(files, capsys):
    code, out, err = run_main([files / "big", "--filter-size", "3", "--max-bytes", "100M"], capsys)
    assert_one_line_error(code, out, err, "5000×5000 pixels", "191 MiB", "limit of 100 MiB")
    code, out, err = run_main([files / "two_big", "--filter-size", "3", "--max-bytes", "100M"], capsys)
    assert_one_line_error(code, out, err, "the 2 PNG files in", "137 MiB", "limit of 100 MiB")


# ------------------------------------------------------------------------------------------- extreme numbers

@pytest.mark.parametrize("name, words", [("huge_pixels.npy", ("entries up to", "e+200")),
                                         ("tiny_pixels.npy", ("no entry above", "e-200"))])
def test_pixels_beyond_safe_float64_arithmetic_name_the_file(files, capsys, name, words):
    code, out, err = run_main([files / name, "--filter-size", "3"], capsys)
    assert_one_line_error(code, out, err, f"images file {files / name}", *words, "divide the images")


def test_the_api_refuses_huge_pixels_with_a_value_error():
    x = np.random.default_rng(0).normal(size=(12, 10, 10)) * 1e200
    with pytest.raises(ValueError, match=r"^images has entries up to .*e\+200"):
        fl.diagnose(x, 3)


def test_inside_the_allowed_range_the_diagnosis_does_not_depend_on_scale():
    """Pixels × c and teacher × t: the rates and contractions are unchanged and the step caps scale with 1/c² (the
    constants are second moments of the patches; the teacher's scale cancels), so the range refused above is the
    only limit."""
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(30, 8, 8)), rng.normal(size=9)
    ref = fl.diagnose(x, 3, w_star=w, n_directions=4, steps=30, seed=0)
    for c, t in ((1e45, 1e-45), (1e-45, 1e45)):
        d = fl.diagnose(x * c, 3, w_star=w * t, n_directions=4, steps=30, seed=0)
        for run, want in ((d.run_patch, ref.run_patch), (d.run_conv, ref.run_conv)):
            assert run.measured_contraction == pytest.approx(want.measured_contraction, rel=1e-12)
        assert d.theorem_3_2.step_cap * c ** 2 == pytest.approx(ref.theorem_3_2.step_cap, rel=1e-12)
        assert not NOT_A_NUMBER.search(d.table())


def test_complex_images_are_refused(files, capsys):
    code, out, err = run_main([files / "complex.npy", "--filter-size", "3"], capsys)
    assert_one_line_error(code, out, err, "images must hold real numbers", "complex")


def test_nearly_constant_images_give_a_report_without_none_or_nan(files):
    """What ``python -m filterlib diagnose constant.npy --filter-size 5 --seed 1`` prints (table or JSON)."""
    d = fl.diagnose(np.load(files / "constant.npy"), 5, n_directions=4, steps=20, seed=1)
    th = d.theorem_3_2
    assert th.contraction == 1.0 and th.step_cap > 0          # the case: 1 − ηγ/2 rounds to 1 in float64
    assert th.iterations is not None and th.iterations > 1e15 and "steps to ε at" in d.verdict
    for text in (d.table(), d.to_json()):
        assert not NOT_A_NUMBER.search(text) and "None" not in text
    assert json.loads(d.to_json())["theorem_3_2"]["iterations"] == th.iterations


def test_iterations_to_stays_finite_when_the_contraction_rounds_to_1():
    shrink = 1e-18                                           # 1 − shrink == 1.0 in float64
    assert 1 - shrink == 1.0 and iterations_to(1 - shrink, 0.5, 1e-3) is None
    n = iterations_to(1 - shrink, 0.5, 1e-3, shrink=shrink)
    assert n == pytest.approx(2 * np.log(500) / shrink, rel=1e-9)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_diverging_step_is_reported_as_diverged(files, capsys, fmt):
    argv = [files / "positive.npy", "--filter-size", "3", "--eta", "1e200", *FAST] + (["--json"] if fmt == "json"
                                                                                       else [])
    code, out, err = run_main(argv, capsys)
    assert code == 0, err
    assert not NOT_A_NUMBER.search(out), out
    if fmt == "json":
        result = json.loads(out)
        for run in ("run_patch", "run_conv"):
            assert result[run]["reason"].startswith("gradient descent diverged"), result[run]
            assert result[run]["measured_contraction"] is None
        assert "diverged at η = 1e+200" in result["verdict"]
    else:
        assert out.count("no rate: gradient descent diverged") == 2 and "did not shrink" not in out


# ------------------------------------------------------------------------------------------------------ options

@pytest.mark.parametrize("seed", [str(2**64), str(10**30), "-1"])
def test_seed_out_of_range_names_the_option_and_its_range(files, capsys, seed):
    code, out, err = run_main([files / "small.npy", "--filter-size", "3", "--seed", seed], capsys)
    needle = "--seed must be an integer from 0 to 2**64 − 1" if seed != "-1" else "--seed must be a non-negative"
    assert_one_line_error(code, out, err, needle)


def test_the_largest_seed_works(files, capsys):
    code, out, err = run_main([files / "small.npy", "--filter-size", "3", "--seed", str(2**64 - 1), "--json",
                               *FAST], capsys)
    assert code == 0, err
    assert json.loads(out)["setup"]["seed"] == 2**64 - 1


# ----------------------------------------------------------------------------------------------------- teachers

@pytest.mark.parametrize("name, words", [("teacher_huge.npy", "entries up to 1e+200"),
                                         ("teacher_tiny.npy", "no entry above 1e-200")])
def test_extreme_teachers_name_the_teacher_file_and_option(files, capsys, name, words):
    code, out, err = run_main([files / "small.npy", "--filter-size", "3", "--teacher", files / name], capsys)
    assert_one_line_error(code, out, err, f"teacher file {files / name} (--teacher)", words,
                          "its scale does not matter")
    assert "w0" not in err and "zero filter" not in err


def test_teacher_archives_and_declared_sizes(files, capsys):
    code, out, err = run_main([files / "small.npy", "--filter-size", "3", "--teacher", files / "teacher_two.npz"],
                              capsys)
    assert_one_line_error(code, out, err, str(files / "teacher_two.npz"), "name the one to use 'teacher'")
    assert "'images'" not in err
    assert np.array_equal(load_teacher(files / "teacher_named.npz"), np.arange(1.0, 10.0).reshape(3, 3))
    code, out, err = run_main([files / "small.npy", "--filter-size", "3", "--teacher",
                               files / "teacher_declared.npy"], capsys)
    assert_one_line_error(code, out, err, f"teacher file {files / 'teacher_declared.npy'}", "more than the limit")


def test_a_zero_teacher_is_still_called_zero(tmp_path, capsys):
    np.save(tmp_path / "zero.npy", np.zeros((3, 3)))
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(4, 6, 6)))
    code, out, err = run_main([tmp_path / "x.npy", "--filter-size", "3", "--teacher", tmp_path / "zero.npy"], capsys)
    assert_one_line_error(code, out, err, "w_star must be non-zero", "zero filter", str(tmp_path / "zero.npy"))


# ---------------------------------------------------------------------------------------- the real command

def test_the_command_prints_no_traceback(files):
    """The hostile files through `python -m filterlib` itself (run together: each spends its time importing torch)."""
    runs = {"declared": [files / "huge.npy", "--filter-size", "3"],
            "bomb": [files / "bomb", "--filter-size", "3"]}
    env = {**os.environ, "FILTERLIB_PROGRESS": "0", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = {name: subprocess.Popen([sys.executable, "-m", "filterlib", "diagnose", *map(str, args)], cwd=ROOT,
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, args in runs.items()}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        assert_one_line_error(proc.returncode, out, err)
