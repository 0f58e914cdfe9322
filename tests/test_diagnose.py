"""filterlib.diagnose (the package filterlib.diagnosis) and `python -m filterlib diagnose` (chapters/diagnose.md):
estimates against closed forms, agreement with the theory estimators, the result's JSON form, the stages, the command
line end to end, and bad inputs."""
from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch

import filterlib as fl
from filterlib import theory
from filterlib.__main__ import main
from filterlib.data import load_images, resolve_teacher
from filterlib.diagnosis import Diagnosis
from filterlib.tables import format_number
from filterlib.theory import gaussian_conv_constants

ROOT = Path(__file__).resolve().parent.parent
f64 = torch.float64
FAST = dict(n_directions=4, steps=20, progress=False)          # for tests that only need the plumbing


def _walk(x, path="d"):
    """Every leaf of a nested dict/list with its path."""
    if isinstance(x, dict):
        for key, val in x.items():
            yield from _walk(val, f"{path}.{key}")
    elif isinstance(x, list):
        for i, val in enumerate(x):
            yield from _walk(val, f"{path}[{i}]")
    else:
        yield path, x


def _assert_plain(d: dict):
    json.dumps(d, allow_nan=False)
    for path, leaf in _walk(d):
        assert leaf is None or isinstance(leaf, (bool, int, float, str)), (path, type(leaf))
        if isinstance(leaf, float):
            assert math.isfinite(leaf), path


# --------------------------------------------------------------------------------------------------------------
# Gaussian noise: closed forms


@pytest.fixture(scope="module")
def gaussian_diagnosis():
    """1500 images of i.i.d. N(0, 1) pixels, 3×3 filters at stride 3: k = 16 independent N(0, I_9) patches."""
    x = torch.randn(1500, 12, 12, generator=torch.Generator().manual_seed(100), dtype=f64)
    return x, fl.diagnose(x, 3, 3, None, n_images=None, n_patches=None, steps=100, progress=False)


def test_gaussian_estimates_match_closed_forms_within_3_se(gaussian_diagnosis):
    _, d = gaussian_diagnosis
    k, phi0 = d.setup["k"], d.setup["phi0"]
    assert (k, d.setup["p"], d.setup["n_patches"]) == (16, 9, 1500 * 16)
    bg, cg = theory.default_beta_grid(dtype=f64), theory.default_cross_grid(dtype=f64)
    closed = {("patch", "gamma"): theory.gaussian_gamma(phi0), ("patch", "L"): theory.gaussian_L(phi0),
              ("patch", "beta"): (theory.gaussian_L_minus(bg) / bg).max(),
              ("conv", "gamma"): gaussian_conv_constants(phi0, k)["gamma"],
              ("conv", "L"): gaussian_conv_constants(phi0, k)["L"],
              ("conv", "beta"): (gaussian_conv_constants(bg, k)["L_minus"] / bg).max(),
              ("conv", "L_cross"): (gaussian_conv_constants(cg, k)["cross_sum"] / cg).max()}
    for (view, key), exact in closed.items():
        est = getattr(d, view)[key]
        assert est.se is not None and est.se > 0, (view, key)
        z = (est.value - float(exact)) / est.se
        assert abs(z) <= 3, (f"{view} {key}: {est.value:.4f} ± {est.se:.4f} vs closed form {float(exact):.4f} "
                             f"(z = {z:.2f})")


def test_gaussian_theorems_and_measured_rate(gaussian_diagnosis):
    _, d = gaussian_diagnosis
    th = d.theorem_3_2
    assert th.condition.holds and th.step_cap > 0 and 0 < th.contraction < 1 and th.iterations > 0
    assert th.iterations_O > 0
    run = d.run_patch
    assert run.eta == pytest.approx(th.step_cap) and run.eta_source.startswith("Theorem 3.2")
    assert run.bound == pytest.approx(th.contraction)
    assert run.bound_holds is True and run.worst_step <= run.bound and run.measured_contraction < run.bound
    # Theorem 4.1 cannot apply to k ≥ 2 independent Gaussian patches (chapters/diagnose.md): no step, with a reason
    t41 = d.theorem_4_1
    assert t41.condition.holds is False and t41.condition.rhs == pytest.approx(6 * d.conv["L_cross"].value)
    assert t41.step_cap is None and t41.contraction is None and t41.iterations is None and "fails" in t41.reason
    assert d.run_conv.bound is None and "no theorem" in d.run_conv.eta_source


def test_gaussian_conv_constants_reduce_to_one_neuron_for_k_1():
    phi = torch.linspace(0.1, 3.0, 7, dtype=f64)
    c = gaussian_conv_constants(phi, 1)
    assert torch.allclose(c["gamma"], theory.gaussian_gamma(phi))
    assert torch.allclose(c["L"], theory.gaussian_L(phi))
    assert torch.allclose(c["L_minus"], theory.gaussian_L_minus(phi))
    assert torch.all(c["cross_sum"] == 0)


def test_estimates_equal_the_theory_estimators_on_the_same_sample(gaussian_diagnosis):
    x, _ = gaussian_diagnosis
    x = x[:300]
    d = fl.diagnose(x, 3, 3, "gabor", n_images=None, n_patches=None, n_directions=8, steps=5, progress=False)
    Z = fl.patches(x, 3, 3)
    w_star = d.details["w_star"]
    assert torch.equal(w_star, fl.data.gabor(**{**fl.data.PAPER_GABOR, "size": 3}, dtype=f64, device="cpu").reshape(-1))
    kw = dict(n_directions=8, seed=0)
    phi0 = d.setup["phi0"]
    assert d.conv["gamma"].value == pytest.approx(float(theory.conv_gamma(Z, w_star, phi0, **kw)), rel=1e-9)
    assert d.conv["L"].value == pytest.approx(float(theory.conv_L(Z, w_star, phi0, **kw)), rel=1e-9)
    assert d.conv["beta"].value == pytest.approx(float(theory.conv_beta(Z, w_star, **kw)), rel=1e-9)
    assert d.conv["L_cross"].value == pytest.approx(float(theory.L_cross(Z, w_star, **kw)), rel=1e-9)
    assert d.conv["mu"].value == pytest.approx(float(theory.mu(Z, w_star)), rel=1e-12)
    assert d.conv["rho"].value == pytest.approx(float(theory.rho(Z)), rel=1e-12)
    Zp = Z.reshape(-1, 1, 9)                                            # n_patches=None keeps every patch in order
    assert torch.equal(d.details["patch_sample"], Zp)
    assert d.patch["gamma"].value == pytest.approx(float(theory.gamma(Zp, w_star, phi0, **kw)), rel=1e-9)
    assert d.patch["L"].value == pytest.approx(float(theory.L(Zp, w_star, phi0, **kw)), rel=1e-9)
    assert d.patch["beta"].value == pytest.approx(float(theory.beta(Zp, w_star, **kw)), rel=1e-9)


def test_k_equal_1_makes_the_two_views_agree():
    x = torch.randn(400, 3, 3, generator=torch.Generator().manual_seed(1), dtype=f64)
    d = fl.diagnose(x, 3, n_images=None, n_patches=None, **FAST)
    assert d.setup["k"] == 1
    assert d.conv["L_cross"].value == 0 and d.conv["gamma"].value == pytest.approx(d.patch["gamma"].value)
    assert d.theorem_4_1.condition.holds and d.theorem_4_1.step_cap == pytest.approx(d.theorem_3_2.step_cap)


# --------------------------------------------------------------------------------------------------------------
# The result: table and JSON


def test_singular_data_give_none_with_reasons_and_plain_json():
    """A pixel that is 0 in every image makes every joint moment singular: γ = 0, no theorem step, no NaN."""
    x = torch.rand(60, 6, 6, generator=torch.Generator().manual_seed(2), dtype=f64)
    x[:, :, 0] = 0
    d = fl.diagnose(x, 6, **FAST)
    assert isinstance(d, Diagnosis)
    assert d.patch["gamma"].value == 0 and "singular" in d.patch["gamma"].reason
    for th in (d.theorem_3_2, d.theorem_4_1):
        assert th.condition.holds is False and th.step_cap is None and th.reason
    assert d.run_patch.eta is not None and "no theorem" in d.run_patch.eta_source and d.run_patch.bound is None
    out = d.to_dict()
    _assert_plain(out)
    assert out["theorem_3_2"]["step_cap"] is None and out["theorem_3_2"]["reason"]
    assert "details" not in out
    assert json.loads(d.to_json()) == out
    text = d.table()
    assert "Theorem 3.2" in text and "Theorem 4.1" in text and "no step" in text and "nan" not in text.lower()


def test_to_dict_is_plain_for_a_normal_run(gaussian_diagnosis):
    _, d = gaussian_diagnosis
    out = d.to_dict()
    _assert_plain(out)
    assert set(out) == {"setup", "patch", "conv", "closeness", "theorem_3_2", "theorem_4_1", "run_patch", "run_conv",
                        "verdict", "activation", "causes"}
    assert out["patch"]["gamma"]["se"] > 0 and isinstance(out["theorem_4_1"]["condition"]["holds"], bool)
    assert "Theorem 3.2" in str(d) and "Verdict" in d.table()


class _Report(HTMLParser):
    """The parts of a Diagnosis' HTML report, read independently of how it was written: the paragraphs' text,
    every table's rows of cell texts (header row first; the notes under a table in ``notes``) and every <img>'s
    attributes."""

    def __init__(self):
        super().__init__()
        self.paragraphs, self.tables, self.images, self.captions, self.notes = [], [], [], [], []
        self._cell = self._par = self._caption = None
        self._foot = False

    def handle_starttag(self, tag, attrs):
        if tag == "tfoot":
            self._foot = True
        elif self._foot:
            return
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "p":
            self._par = ""
        elif tag == "caption":
            self._caption = ""
        elif tag == "img":
            self.images.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag == "tfoot":
            self._foot = False
        elif self._foot:
            return
        elif tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None
        elif tag == "p":
            self.paragraphs.append(self._par)
            self._par = None
        elif tag == "caption":
            self.captions.append(self._caption)
            self._caption = None

    def handle_data(self, data):
        if self._foot:
            self.notes.append(data)
            return
        for name in ("_cell", "_par", "_caption"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name) + data)


def _report(d) -> _Report:
    parser = _Report()
    parser.feed(d._repr_html_())
    parser.close()
    return parser


def _number(x) -> str:
    return format_number(x, 3, html_form=True)


def _check_report(d):
    """The HTML report of ``d`` against its fields: verdict, conditions, rates, one figure with alt text."""
    rep = _report(d)
    assert any(p.startswith("Verdict.") and d.verdict in p for p in rep.paragraphs), rep.paragraphs
    conditions, rates, constants = rep.tables                  # conditions, rates, constants (folded away)
    # the conditions: Theorem 3.2's, Theorem 4.1's and Theorem 4.3's two, each with both sides and its verdict
    expected = [d.theorem_3_2.condition, d.theorem_4_1.condition, *d.closeness.values()]
    assert conditions[0] == ["theorem", "condition", "left side", "right side", "verdict"]
    assert [row[1] for row in conditions[1:]] == [c.statement for c in expected]
    assert [row[0].split()[0] for row in conditions[1:]] == ["3.2", "4.1", "4.3", "4.3"]
    for row, c in zip(conditions[1:], expected):
        verdict = {True: "holds", False: "fails"}.get(c.holds, "—1")
        assert row[4].startswith(verdict[:1]) and (c.holds is None or row[4] == verdict), (row, c)
        for cell, side in ((row[2], c.lhs), (row[3], c.rhs)):
            assert cell == (_number(side) if side is not None else cell) and (side is not None or "—" in cell)
    # the rates: one row per run, the measured rate −ln c and the bound's rate (or "—" with a reason)
    assert rates[0][:4] == ["run", "step η", "guaranteed rate", "measured rate"]
    assert len(rates) == 3 and rates[1][0].startswith("one neuron") and rates[2][0].startswith("convolutional")
    for row, run in zip(rates[1:], (d.run_patch, d.run_conv)):
        assert row[1] == (_number(run.eta) if run.eta is not None else row[1])
        if run.bound is None:
            assert row[2].startswith("—")
        else:
            assert row[2] == _number(-math.log(run.bound))
        if run.measured_contraction is None:
            assert row[3].startswith("—")
        else:
            assert row[3] == _number(-math.log(run.measured_contraction))
    assert any(row[1] == "L_cross" for row in constants)
    # one figure, an embedded PNG with alt text that names what it shows
    assert len(rep.images) == 1
    img = rep.images[0]
    assert img["src"].startswith("data:image/png;base64,")
    assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "squared distance" in img["alt"] and len(img["alt"]) > 80
    words = " ".join([*rep.paragraphs, *rep.notes, *rep.captions,
                      *(cell for table in rep.tables for row in table for cell in row)])
    assert "nan" not in words.lower().split() and "None" not in words and "inf" not in words.split()
    return rep


def test_html_report_shows_verdict_tables_and_one_figure(gaussian_diagnosis):
    _, d = gaussian_diagnosis
    rep = _check_report(d)
    conditions = rep.tables[0]
    assert [row[4] for row in conditions[1:3]] == ["holds", "fails"]   # Theorem 3.2 holds, 4.1 fails (k = 16)
    assert rep.tables[1][2][2].startswith("—")                        # no guarantee for the convolutional run
    assert any("Theorem 4.1's condition fails" in note for note in rep.notes)


def test_html_report_of_singular_data_gives_reasons_not_numbers():
    x = torch.rand(60, 6, 6, generator=torch.Generator().manual_seed(2), dtype=f64)
    x[:, :, 0] = 0
    d = fl.diagnose(x, 6, **FAST)
    rep = _check_report(d)
    assert rep.tables[0][1][4] == "fails" and rep.tables[1][1][2].startswith("—")


def test_html_report_without_histories_has_no_figure(gaussian_diagnosis):
    _, d = gaussian_diagnosis
    bare = dataclasses.replace(d, details={})
    rep = _report(bare)
    assert rep.images == [] and len(rep.tables) == 3


def test_text_and_json_forms_are_unchanged_by_the_html(gaussian_diagnosis):
    _, d = gaussian_diagnosis
    text = d.table()
    assert str(d) == text and repr(d) == text and "<" not in text
    assert text.splitlines()[0].startswith("Diagnosis: 1500 images of 12×12") and "Verdict: " in text
    assert set(d.to_dict()) == {"setup", "patch", "conv", "closeness", "theorem_3_2", "theorem_4_1", "run_patch",
                                "run_conv", "verdict", "activation", "causes"}
    assert json.loads(d.to_json()) == d.to_dict()


def test_stages_run_in_order_with_their_progress_labels():
    from filterlib import diagnosis

    assert fl.diagnose is diagnosis.diagnose                            # the package does not shadow the function
    assert [label for label, _ in diagnosis.STAGES] == ["patches", "one-neuron constants", "convolutional constants",
                                                        "closeness (Theorem 4.3)", "gradient descent (one neuron)",
                                                        "gradient descent (convolutional)"]


def test_teachers():
    w, name = resolve_teacher(None, 4, seed=3)
    assert w.shape == (16,) and w.dtype == f64 and "random" in name
    assert torch.equal(w, resolve_teacher("random", 4, seed=3)[0])
    g, _ = resolve_teacher("gabor", 5)
    assert torch.allclose(g, fl.data.gabor(**fl.data.PAPER_GABOR, dtype=f64, device="cpu").reshape(-1))
    given = np.arange(1, 10, dtype=np.float32).reshape(3, 3)
    assert torch.equal(resolve_teacher(given, 3)[0], torch.arange(1, 10, dtype=f64))
    assert torch.equal(resolve_teacher(given.reshape(-1), 3)[0], torch.arange(1, 10, dtype=f64))


# --------------------------------------------------------------------------------------------------------------
# Input errors name the parameter


@pytest.mark.parametrize("images, kwargs, error, match", [
    (np.zeros((4, 8)), {}, ValueError, r"images must have shape \(N, H, W\).*leading axis"),
    (np.zeros((2, 4, 4, 3)), {}, ValueError, r"images must have shape \(N, H, W\).*grayscale"),
    (np.zeros((0, 8, 8)), {}, ValueError, "images must not be empty"),
    (np.array([[["a"]]]), {}, TypeError, "images must hold real numbers"),
    (np.full((3, 8, 8), np.nan), {}, ValueError, "images contains NaN"),
    (np.zeros((3, 8, 8)), {"filter_size": 9}, ValueError, r"filter_size=9 is larger than the images, which are 8×8"),
    (np.zeros((3, 8, 8)), {"filter_size": 1}, ValueError, "filter_size must be at least 2"),
    (np.zeros((3, 8, 8)), {"filter_size": 2.5}, TypeError, "filter_size"),
    (np.zeros((3, 8, 8)), {"stride": 0}, ValueError, "stride"),
    (np.zeros((3, 8, 8)), {"phi0": 2.0}, ValueError, "phi0"),
    (np.zeros((3, 8, 8)), {"eps": 1.5}, ValueError, "eps"),
    (np.zeros((3, 8, 8)), {"n_images": 0}, ValueError, "n_images"),
    (np.zeros((3, 8, 8)), {"w_star": "sobel"}, ValueError, "w_star must be None, 'random', 'gabor'"),
    (np.zeros((3, 8, 8)), {"w_star": np.ones(5)}, ValueError, r"w_star must have shape \(3, 3\) or \(9,\)"),
    (np.zeros((3, 8, 8)), {"w_star": np.zeros(9)}, ValueError, "w_star must be non-zero"),
])
def test_bad_arguments(images, kwargs, error, match):
    kwargs = {"filter_size": 3, **kwargs}
    with pytest.raises(error, match=match):
        fl.diagnose(images, **kwargs)


def test_accepts_integer_numpy_and_torch_images():
    x = np.random.default_rng(0).integers(0, 255, size=(30, 6, 6), dtype=np.uint8)
    a = fl.diagnose(x, 3, **FAST)
    b = fl.diagnose(torch.from_numpy(x), 3, **FAST)
    da, db = a.to_dict(), b.to_dict()
    assert da["setup"].pop("input")["source"] == "numpy ndarray"       # the report says what it was given
    assert db["setup"].pop("input")["source"] == "torch Tensor"
    assert da == db


# --------------------------------------------------------------------------------------------------------------
# Command line


CLI_FAST = ["--n-directions", "4", "--steps", "20"]


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Four `python -m filterlib diagnose` runs, started together (they spend most of their time importing torch):
    a .npy file (table), an .npz archive with a teacher file (JSON), a folder of PNGs (JSON) and a missing file."""
    from PIL import Image

    tmp = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    np.save(tmp / "imgs.npy", rng.normal(size=(12, 10, 10)))
    np.savez(tmp / "imgs.npz", images=rng.normal(size=(12, 10, 10)), other=np.zeros(2))
    np.save(tmp / "w.npy", rng.normal(size=(3, 3)))
    folder = tmp / "pngs"
    folder.mkdir()
    Image.fromarray(rng.integers(0, 256, (9, 9), dtype=np.uint8), mode="L").save(folder / "a.png")
    Image.fromarray(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8), mode="RGB").save(folder / "b.png")
    Image.fromarray(rng.integers(0, 256, (9, 9, 4), dtype=np.uint8), mode="RGBA").save(folder / "c.png")
    (folder / "notes.txt").write_text("ignored")
    runs = {"npy": [tmp / "imgs.npy", "--filter-size", "3", "--stride", "2", *CLI_FAST],
            "npz": [tmp / "imgs.npz", "--filter-size", "3", "--teacher", tmp / "w.npy", "--json", *CLI_FAST],
            "png": [folder, "--filter-size", "3", "--teacher", "gabor", "--json", *CLI_FAST],
            "missing": [tmp / "nope.npy", "--filter-size", "3"]}
    env = {**os.environ, "FILTERLIB_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    procs = {name: subprocess.Popen([sys.executable, "-m", "filterlib", "diagnose", *map(str, args)], cwd=ROOT,
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, args in runs.items()}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        out[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    out["folder"] = folder
    return out


def test_cli_npy_table(cli):
    proc = cli["npy"]
    assert proc.returncode == 0, proc.stderr
    assert "Theorem 3.2" in proc.stdout and "Theorem 4.1" in proc.stdout and "Verdict:" in proc.stdout
    assert "stride 2, k = 16 patches" in proc.stdout and proc.stderr == ""


def test_cli_npz_json_with_teacher_file(cli):
    proc = cli["npz"]
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)                                       # only JSON on stdout
    _assert_plain(out)
    assert out["setup"]["k"] == 64 and out["setup"]["teacher"] == "given 3×3 filter"


def test_cli_png_folder_json(cli):
    images = load_images(cli["folder"])
    assert images.shape == (3, 9, 9) and 0 <= images.min() and images.max() <= 1
    proc = cli["png"]
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["setup"]["n_images"] == 3 and out["setup"]["k"] == 49 and out["setup"]["teacher"].startswith("Gabor")


def test_cli_missing_file_exits_2(cli):
    proc = cli["missing"]
    assert proc.returncode == 2 and proc.stdout == ""
    assert "error" in proc.stderr and "nope.npy does not exist" in proc.stderr and "Traceback" not in proc.stderr


def _bad_inputs(tmp_path: Path) -> dict:
    rng = np.random.default_rng(4)
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY garbage that is not an array")
    (tmp_path / "text.npz").write_text("not a zip archive")
    np.save(tmp_path / "flat.npy", rng.normal(size=(10, 10)))
    np.save(tmp_path / "nan.npy", np.full((3, 8, 8), np.nan))
    np.save(tmp_path / "small.npy", rng.normal(size=(3, 4, 4)))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 5, 5)), b=np.zeros((2, 5, 5)))
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "badpng").mkdir()
    (tmp_path / "badpng" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    from PIL import Image

    (tmp_path / "sizes").mkdir()
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "sizes" / "a.png")
    Image.fromarray(np.zeros((9, 8), dtype=np.uint8)).save(tmp_path / "sizes" / "b.png")
    np.save(tmp_path / "w_bad.npy", np.ones(5))
    return {
        "missing": ([tmp_path / "missing.npy"], "does not exist"),
        "corrupt": ([tmp_path / "corrupt.npy"], "cannot read images file"),
        "not an npz": ([tmp_path / "text.npz"], "cannot read images file"),
        "wrong shape": ([tmp_path / "flat.npy"], r"images must have shape (N, H, W)"),
        "NaN": ([tmp_path / "nan.npy"], "images contains NaN"),
        "filter too large": ([tmp_path / "small.npy", "--filter-size", "5"], "larger than the images"),
        "pickled objects": ([tmp_path / "objects.npy"], "cannot read images file"),
        "ambiguous npz": ([tmp_path / "two.npz"], "holds several arrays"),
        "wrong suffix": ([tmp_path / "notes.txt"], "must be .npy, .npz, .png"),
        "empty folder": ([tmp_path / "empty"], "contains no .png files"),
        "corrupt png": ([tmp_path / "badpng"], "not a readable PNG"),
        "png sizes differ": ([tmp_path / "sizes"], "differ in size"),
        "teacher shape": ([tmp_path / "small.npy", "--teacher", tmp_path / "w_bad.npy"], "w_star must have shape"),
        "teacher missing": ([tmp_path / "small.npy", "--teacher", tmp_path / "w.npy"], "teacher file"),
        "negative n-images": ([tmp_path / "small.npy", "--n-images", "-3"], "n_images"),
    }


def test_cli_bad_inputs_give_clear_errors_and_exit_2(tmp_path, capsys):
    for name, (args, message) in _bad_inputs(tmp_path).items():
        argv = ["diagnose", *map(str, args)]
        if "--filter-size" not in argv:
            argv += ["--filter-size", "3"]
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 2, name
        assert captured.out == "", name
        assert captured.err.startswith("python -m filterlib diagnose: error: "), (name, captured.err)
        assert message in captured.err, (name, captured.err)


def test_cli_usage_errors_exit_2(capsys):
    for argv in (["diagnose", "x.npy"], [], ["diagnose", "x.npy", "--filter-size", "three"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert "usage" in capsys.readouterr().err
