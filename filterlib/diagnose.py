"""Is my filter easy to learn? The paper's constants measured on a user's own images (chapters/diagnose.md).

:func:`diagnose` cuts a stack of images (N, H, W) into patches, estimates the constants of Du, Lee & Tian (2018)
for a teacher filter w*, checks the conditions of Theorems 3.2 and 4.1, computes the largest step each theorem
allows and its predicted number of iterations, then runs gradient descent from ‖w₀ − w*‖ = sin(φ₀)‖w*‖ on the
same patches and reports the measured contraction per step next to the theorem's bound. It returns a
:class:`Diagnosis` with :meth:`~Diagnosis.table` (readable text) and :meth:`~Diagnosis.to_dict` (JSON-ready).
The command line ``python -m filterlib diagnose IMAGES --filter-size 5`` wraps it (:mod:`filterlib.__main__`).

Two views of the same patches, and which theorem each number belongs to:

* **patch** (one neuron, k = 1): every patch, from any position of any image, is its own example. Definition 3.1
  γ(φ), L(φ) and Assumption 3.2 β are estimated on ``n_patches`` patches drawn from all positions; Theorem 3.2
  (step cap γ/(2(L + 4β)²), contraction 1 − ηγ/2, O((L + β)²/γ² log 1/ε) iterations) is the guarantee for
  training one neuron on them. These are the numbers that say how *smooth* the patch distribution is.
* **conv** (the convolutional model, k patches per image, average pooling): Assumption 4.1 γ(φ), L(φ), β of the
  patch averages Z_S, Assumption 4.2 L_cross, Theorem 4.3's ρ, μ and γ_avg, and Theorem 4.1 (condition
  γ(φ₀) > 6 L_cross, step cap (γ − 6L_cross)/(2(L + 10L_cross + 4β)²), contraction 1 − η(γ − 6L_cross)/2).
  This is the model the user trains. With k = 1 (images as large as the filter) both views coincide.

Where a theorem's condition fails it gives no step and no bound: the fields are ``None`` with a ``reason``, never an
exception. Gradient descent is then run with the smoothness-only step 1/(max L + 4β), which no theorem covers
(labelled as such), or with a step the user passes as ``eta``; for the convolutional model a given ``eta`` below
Theorem 3.2's cap evaluated on the conv constants gets that formula's bound 1 − ηγ/2, labelled a heuristic.

Estimator caveats (see :mod:`filterlib.theory`): γ is a minimum and L, β, L_cross maxima over *all* directions at
angle φ; for p > 2 the estimators try ``n_directions`` random ones, which can miss the extreme direction for laws
that are not rotation invariant (γ biased up, L, β, L_cross down). Error bars (``se``) cover sampling noise and the
min/max selection bias, not a missed direction. The constants are those of the *sample* (the empirical law of the
chosen images), which is also what gradient descent runs on, so the theorems apply to that run exactly up to
these estimation errors. Iteration counts: ``iterations_O`` is the theorem's O(·) term *without* its unknown
absolute constant (compare it between data sets, not with step counts); ``iterations`` is the number of steps the
theorem's contraction bound needs, at the step it allows, to go from sin φ₀ to ε (relative distance).

Defaults (``n_images=200``, ``n_patches=10_000``, ``n_directions=16``, ``steps=300``) make 200 MNIST images with a
5×5 filter (k = 576 patches each) take a few seconds on one CPU core.
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field, fields, is_dataclass

import numpy as np
import torch

from . import _validate as v
from . import config, rng
from . import theory
from .data import PAPER_GABOR, gabor
from .model import patches
from .train import gradient_descent

__all__ = ["Check", "Diagnosis", "Estimate", "Guarantee", "Run", "diagnose", "gaussian_conv_constants",
           "load_images", "load_teacher", "resolve_teacher"]

_DTYPE = torch.float64          # every estimate is made in float64 (λ_min of real patches can be ~1e-6 of λ_max)
_CAP_POINTS = 4                 # the step caps' min over φ ∈ [0, φ₀] runs over φ₀·(0, 1/3, 2/3, 1)
_FLOOR = 1e-10                  # relative distances below this are round-off, not convergence, in the rate fit
_TEACHERS = ("random", "gabor")


# --------------------------------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True)
class Estimate:
    """A Monte-Carlo estimate: ``value`` (None when it cannot be computed; ``reason`` says why), its error bar
    ``se`` (None where the estimator offers none), and an optional caveat in ``reason``."""

    value: float | None
    se: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Check:
    """A condition or claimed inequality, with the two numbers compared: ``holds`` is ``lhs <op> rhs`` as written in
    ``statement`` (None when a number is missing; ``reason`` says why)."""

    statement: str
    holds: bool | None
    lhs: float | None
    rhs: float | None
    reason: str | None = None


@dataclass(frozen=True)
class Guarantee:
    """What one theorem promises on this data.

    ``step_cap``: the largest constant step it allows (min of its cap over φ ∈ [0, φ₀]); ``contraction``: its bound
    on ‖w_{t+1} − w*‖²/‖w_t − w*‖² at that step (worst case over φ ≤ φ₀); ``iterations``: steps that bound needs from
    relative distance sin φ₀ to ε; ``iterations_O``: the theorem's O(·) iteration count *without* its absolute
    constant. All None, with a ``reason``, when the condition fails.
    """

    theorem: str
    model: str
    condition: Check
    step_cap: float | None
    contraction: float | None
    iterations: float | None
    iterations_O: float | None
    reason: str | None = None


@dataclass(frozen=True)
class Run:
    """Gradient descent on the sample from ‖w₀ − w*‖ = sin φ₀ ‖w*‖, next to the theorem's prediction.

    ``measured_contraction`` is exp(slope) of a least-squares fit of log ‖w_t − w*‖² against t (the mean squared
    contraction per step); ``worst_step`` the largest single-step ratio ‖w_{t+1} − w*‖²/‖w_t − w*‖²; ``bound`` the
    theorem's contraction at ``eta`` (``bound_source`` says which, or why there is none); ``iterations_measured``
    the first step with ‖w − w*‖ ≤ ε‖w*‖ (or, if ``extrapolated``, the fitted rate's prediction of it).
    """

    model: str
    eta: float | None
    eta_source: str
    steps: int
    measured_contraction: float | None
    worst_step: float | None
    bound: float | None
    bound_source: str
    bound_holds: bool | None
    final_relative_distance: float | None
    iterations_measured: float | None
    extrapolated: bool
    reason: str | None = None


@dataclass(frozen=True)
class Diagnosis:
    """The result of :func:`diagnose`: ``setup`` (what was measured), the ``patch`` (one neuron) and ``conv``
    constants as :class:`Estimate`, Theorem 4.3's ``closeness`` checks, the two :class:`Guarantee`, the two
    gradient-descent :class:`Run`, and a one-paragraph ``verdict``. :meth:`table` prints it, :meth:`to_dict` gives
    plain floats, strings, bools and None (JSON-serialisable, no NaN). ``details`` (left out of :meth:`to_dict`)
    holds the tensors ``w_star``, ``w0`` and ``patch_sample`` (the (n_patches, 1, p) single patches of the one-neuron
    view) and the two :class:`~filterlib.train.History` objects ``history_patch`` and ``history_conv`` (None where
    no run was made), for plots and follow-up checks."""

    setup: dict
    patch: dict
    conv: dict
    closeness: dict
    theorem_3_2: Guarantee
    theorem_4_1: Guarantee
    run_patch: Run
    run_conv: Run
    verdict: str
    details: dict = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict:
        """Nested dict of floats, ints, strings, bools and None (no tensors, no NaN or infinity)."""
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "details"}
        json.dumps(out, allow_nan=False)                               # fails loudly if anything slipped through
        return out

    def to_json(self, **kw) -> str:
        """:meth:`to_dict` as a JSON string (``json.dumps`` keywords pass through; NaN is never written)."""
        return json.dumps(self.to_dict(), allow_nan=False, **kw)

    def table(self) -> str:
        """A readable multi-line summary: constants with error bars, conditions, steps, predicted vs measured."""
        s = self.setup
        lines = [f"Diagnosis: {s['n_images']} images of {s['height']}×{s['width']}, filter {s['filter_size']}×"
                 f"{s['filter_size']} (p = {s['p']}), stride {s['stride']}, k = {s['k']} patches per image; "
                 f"teacher {s['teacher']} (‖w*‖ = {s['teacher_norm']:.3g}); φ₀ = {s['phi0']:.4f} rad "
                 f"(start at ‖w₀ − w*‖ = {s['start']:.3g}‖w*‖), ε = {s['eps']:g}"]
        lines.append("")
        lines.append(f"One neuron on single patches ({s['n_patches']} patches): Definition 3.1, Assumption 3.2")
        lines += _estimate_rows(self.patch, _PATCH_NAMES)
        lines.append(f"  smoothness γ(φ₀)/L(φ₀) = {_fmt(_ratio(self.patch['gamma'], self.patch['L']))}")
        lines.append("")
        lines.append(f"Convolutional model ({s['n_images']} images × {s['k']} patches): Assumptions 4.1, 4.2, "
                     f"Theorem 4.3")
        lines += _estimate_rows(self.conv, _CONV_NAMES)
        for chk in self.closeness.values():
            lines.append(_check_row(chk, "Theorem 4.3 claims"))
        lines.append("")
        for g in (self.theorem_3_2, self.theorem_4_1):
            lines.append(f"{g.theorem} ({g.model})")
            lines.append(_check_row(g.condition, "condition"))
            if g.step_cap is None:
                lines.append(f"  no step: {g.reason}")
            else:
                lines.append(f"  largest step η = {_fmt(g.step_cap)}; bound on ‖u_(t+1)‖²/‖u_t‖² = "
                             f"{_fmt_c(g.contraction)}; iterations to ε at that bound = {_fmt(g.iterations)}")
                lines.append(f"  O-term (L+…)²/(γ−…)² log(1/ε), no constant = {_fmt(g.iterations_O)}")
            lines.append("")
        lines.append("Gradient descent on the sample (contraction = per-step factor of ‖w_t − w*‖², fitted)")
        for r in (self.run_patch, self.run_conv):
            lines.append(f"  {r.model}: η = {_fmt(r.eta)} ({r.eta_source}), {r.steps} steps")
            if r.measured_contraction is None:
                lines.append(f"    no rate: {r.reason}")
                continue
            if r.reason:
                lines.append(f"    note: {r.reason}")
            lines.append(f"    measured contraction {_fmt_c(r.measured_contraction)} (worst step "
                         f"{_fmt_c(r.worst_step)}) vs bound {_fmt_c(r.bound)} [{r.bound_source}]"
                         + ("" if r.bound_holds is None else f"; bound held at every step: {r.bound_holds}"))
            how = "" if r.iterations_measured is None else (" (extrapolated)" if r.extrapolated else " (measured)")
            lines.append(f"    iterations to ε: {_fmt(r.iterations_measured)}{how}; final ‖w − w*‖/‖w*‖ = "
                         f"{_fmt(r.final_relative_distance)}")
        lines.append("")
        lines.append("Verdict: " + self.verdict)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


_PATCH_NAMES = {"gamma": "γ(φ₀)", "L": "L(φ₀)", "beta": "β"}
_CONV_NAMES = {"gamma": "γ(φ₀)", "L": "L(φ₀)", "beta": "β", "L_cross": "L_cross", "rho": "ρ (rad)",
               "mu": "μ", "gamma_avg": "γ_avg(φ₀)"}


def _fmt(x, digits: int = 4) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x)
    x = float(x)
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.{max(digits - 1, 1)}e}"
    return f"{x:.{digits}g}" if digits > 4 else f"{x:.4g}"


def _fmt_c(x) -> str:
    """A contraction factor: close to 1 it is shown as 1 − δ so that the digits that matter are visible."""
    if x is None:
        return "—"
    x = float(x)
    if 0.99 < x < 1:
        return f"1 − {1 - x:.3g}"
    return f"{x:.4f}"


def _ratio(a: Estimate, b: Estimate):
    if a.value is None or b.value is None or b.value == 0:
        return None
    return a.value / b.value


def _estimate_rows(ests: dict, names: dict) -> list[str]:
    rows = []
    for key, label in names.items():
        e = ests[key]
        se = "" if e.se is None else f" ± {_fmt(e.se)}"
        note = f"   ({e.reason})" if e.reason else ""
        rows.append(f"  {label:11s} = {_fmt(e.value)}{se}{note}")
    return rows


def _check_row(c: Check, label: str) -> str:
    if c.holds is None:
        return f"  {label}: {c.statement}: unknown ({c.reason})"
    extra = f" ({c.reason})" if c.reason else ""
    return f"  {label}: {c.statement}: {_fmt(c.lhs)} vs {_fmt(c.rhs)} → {'holds' if c.holds else 'FAILS'}{extra}"


def _plain(x):
    """Recursively turn dataclasses, dicts, tensors and numpy scalars into JSON-ready values (NaN/inf → None)."""
    if is_dataclass(x) and not isinstance(x, type):
        return {f.name: _plain(getattr(x, f.name)) for f in fields(x) if not f.name.startswith("_")}
    if isinstance(x, dict):
        return {str(k): _plain(val) for k, val in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(val) for val in x]
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().tolist()
        return _plain(x)
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


# --------------------------------------------------------------------------------------------------------------
# Inputs: images, teacher, files


def _check_images(images) -> torch.Tensor:
    """``images`` as a float64 CPU tensor (N, H, W): real numbers (ints and bools are converted), finite, non-empty."""
    if isinstance(images, torch.Tensor):
        arr = images.detach().cpu()
        if arr.dtype.is_complex:
            raise TypeError(f"images must hold real numbers, got dtype {arr.dtype}")
        t = arr.to(_DTYPE)
    else:
        try:
            arr = np.asarray(images)
        except Exception as exc:                                        # noqa: BLE001 (any failure is a bad input)
            raise TypeError(f"images must be a torch tensor or numpy array of shape (N, H, W), got "
                            f"{type(images).__name__}") from exc
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"images must hold real numbers (a numeric array of shape (N, H, W)), got dtype "
                            f"{arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))
    if t.dim() != 3:
        hint = " (a single image: add a leading axis, images[None])" if t.dim() == 2 else ""
        hint = hint or (" (colour images: convert to grayscale first)" if t.dim() == 4 else "")
        raise ValueError(f"images must have shape (N, H, W), got shape {tuple(t.shape)}{hint}")
    if t.numel() == 0:
        raise ValueError(f"images must not be empty, got shape {tuple(t.shape)}")
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        i = int(bad.reshape(t.shape[0], -1).any(dim=1).nonzero()[0])
        raise ValueError(f"images contains NaN or infinite values ({int(bad.sum())} pixels; first in image {i})")
    return t


def resolve_teacher(w_star, filter_size: int, *, seed: int = 0) -> tuple[torch.Tensor, str]:
    """The teacher filter as a float64 vector of p = filter_size² entries (row-major), and its description.

    ``None`` or ``"random"``: N(0, I_p) drawn from ``seed``; ``"gabor"``: :func:`filterlib.data.gabor` with the
    parameters of :data:`~filterlib.data.PAPER_GABOR` except ``size = filter_size``; an array or tensor of shape
    (s, s) or (s·s,) with s = ``filter_size``: used as given (finite and non-zero).
    """
    s = v.positive_int(filter_size, "filter_size")
    p = s * s
    if w_star is None or (isinstance(w_star, str) and w_star == "random"):
        g = rng.generator(seed, "cpu")
        return torch.randn(p, generator=g, dtype=_DTYPE), f"random N(0, I) (seed {seed})"
    if isinstance(w_star, str):
        if w_star == "gabor":
            params = {**PAPER_GABOR, "size": s}
            w = gabor(**params, dtype=_DTYPE, device="cpu").reshape(-1)
            return w, f"Gabor {s}×{s} (PAPER_GABOR parameters)"
        raise ValueError(f"w_star must be None, 'random', 'gabor' or an array of shape ({s}, {s}) or ({p},), "
                         f"got the string {w_star!r} (to read a file use filterlib.diagnose.load_teacher)")
    try:
        arr = w_star.detach().cpu().numpy() if isinstance(w_star, torch.Tensor) else np.asarray(w_star)
    except Exception as exc:                                            # noqa: BLE001
        raise TypeError(f"w_star must be an array of shape ({s}, {s}) or ({p},), got {type(w_star).__name__}") \
            from exc
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"w_star must hold real numbers, got dtype {arr.dtype}")
    if arr.shape not in ((s, s), (p,)):
        raise ValueError(f"w_star must have shape ({s}, {s}) or ({p},) for filter_size={s}, got shape {arr.shape}")
    w = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64)).reshape(-1)
    if not bool(torch.isfinite(w).all()):
        raise ValueError("w_star contains NaN or infinite values")
    if float(w.norm()) == 0:
        raise ValueError("w_star must be non-zero (an angle to it is needed), got a zero filter")
    return w, f"given {s}×{s} filter"


def _npy(path, what: str) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file {path} does not exist") from None
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"cannot read {what} file {path}: it is not a valid .npy/.npz file without pickled "
                         f"objects ({exc})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            keys = list(loaded.files)
            if not keys:
                raise ValueError(f"{what} file {path} is an .npz archive with no arrays")
            key = "images" if "images" in keys else (keys[0] if len(keys) == 1 else None)
            if key is None:
                raise ValueError(f"{what} file {path} holds several arrays ({', '.join(keys)}); name the one to use "
                                 f"'images' or save only one")
            try:
                return loaded[key]
            except (OSError, ValueError, EOFError) as exc:
                raise ValueError(f"cannot read array {key!r} of {what} file {path} ({exc})") from None
    return loaded


def _png(path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64) / (65535.0 if mode.startswith("I;16") else max(
                    1.0, float(np.asarray(img).max())))
            else:
                if mode not in ("L", "F"):
                    img = img.convert("RGBA" if "A" in mode or mode == "P" else "RGB")
                arr = np.asarray(img, dtype=np.float64)
                if arr.ndim == 3:                                       # RGB(A): ITU-R 601 luma, alpha ignored
                    arr = arr[..., :3] @ np.array([0.299, 0.587, 0.114])
                if mode != "F":
                    arr = arr / 255.0
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {path} does not exist") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"cannot read image file {path}: not a readable PNG ({exc})") from None
    return arr


def load_images(path) -> np.ndarray:
    """Images (N, H, W) from a .npy file, an .npz archive (its only array, or the one named ``images``) or a folder
    of PNG files (sorted by name; RGB converted to grayscale by ITU-R 601 luma, pixels scaled to [0, 1]; all of one
    size). Pickled objects are refused. Raises FileNotFoundError or ValueError with a message naming the file."""
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() == ".png" and f.is_file())
        if not files:
            raise ValueError(f"folder {path} contains no .png files")
        arrays = [_png(f) for f in files]
        first = arrays[0].shape
        for f, a in zip(files, arrays):
            if a.shape != first:
                raise ValueError(f"the PNG files in {path} differ in size: {files[0].name} is {first[0]}×{first[1]} "
                                 f"but {f.name} is {a.shape[0]}×{a.shape[1]}; all images must be the same size")
        return np.stack(arrays)
    if not path.exists():
        raise FileNotFoundError(f"images file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        return _npy(path, "images")
    if suffix == ".png":
        return _png(path)[None]
    raise ValueError(f"images file {path} must be .npy, .npz, .png or a folder of PNG files, got "
                     f"{suffix or 'a name without suffix'}")


def load_teacher(path) -> np.ndarray:
    """A teacher filter from a .npy file (shape (s, s) or (s·s,)); pickled objects are refused."""
    return _npy(path, "teacher")


# --------------------------------------------------------------------------------------------------------------
# Closed forms for Gaussian patches (derived in chapters/diagnose.md)


def gaussian_conv_constants(phi, k: int) -> dict:
    """Assumption 4.1–4.2 quantities for k independent N(0, I_p) patches (p ≥ 2), derived in chapters/diagnose.md.

    With m_A = E[Z 1{A}] for a region A of one patch, E[Z_S Z_Sᵀ] = (1/k)(A_S + (k − 1) m_S m_Sᵀ); in the plane of
    (w, w*) the wedges have |m| = cos(φ/2)/√(2π) (S(w, w*)) and sin(φ/2)/√(2π) (the two wedges of width φ). So

    * γ_k(φ) = (π − φ − sin φ)/(2πk)  (the one-neuron γ divided by k),
    * L_k(φ) = [(π − φ + sin φ)/(2π) + (k − 1)(1 + cos φ)/(4π)]/k,
    * L⁻_k(φ) = [(φ + sin φ)/(2π) + (k − 1)(1 − cos φ)/(4π)]/k  (β_k = its max over the grid of L⁻_k(φ)/φ),
    * cross_sum_k(φ) = (k − 1)/k · [sin φ + sin²(φ/2)]/(2π)  (σ_max of the rank-one T1, T2, T4; L_cross = max/φ).

    ``phi`` a number or 1-D array in (0, π]; returns a dict of float64 tensors of its shape. With k = 1 they are
    the one-neuron closed forms of :mod:`filterlib.theory` and cross_sum is 0.
    """
    k = v.positive_int(k, "k")
    t = torch.as_tensor(phi, dtype=_DTYPE)
    s, c = torch.sin(t), torch.cos(t)
    return {"gamma": (math.pi - t - s) / (2 * math.pi * k),
            "L": ((math.pi - t + s) / (2 * math.pi) + (k - 1) * (1 + c) / (4 * math.pi)) / k,
            "L_minus": ((t + s) / (2 * math.pi) + (k - 1) * (1 - c) / (4 * math.pi)) / k,
            "cross_sum": (k - 1) / k * (s + torch.sin(t / 2) ** 2) / (2 * math.pi)}


# --------------------------------------------------------------------------------------------------------------
# The diagnosis


def _est(value, se, reason=None) -> Estimate:
    val = None if value is None else float(value)
    err = None if se is None else float(se)
    if val is not None and not math.isfinite(val):
        return Estimate(None, None, reason or "the estimate is not finite")
    if err is not None and not math.isfinite(err):
        err = None
    return Estimate(val, err, reason)


def _batches(n: int) -> int | None:
    """Batch count for the error bars (10, or fewer for a small sample); None when n is too small for any."""
    if n >= 20:
        return 10
    if n >= 4:
        return n // 2
    return None


def _pair(S, counts, B):
    """(min λ_min, its se) and (max λ_max, its se) per φ over the candidate directions, from one set of sums."""
    q, m = S.shape[1], S.shape[2]
    ones = torch.ones(q, m, dtype=S.dtype)
    lo, lo_se = theory._extreme(S, counts, ones, True, B is not None)
    hi, hi_se = theory._extreme(S, counts, ones, False, B is not None)
    return lo, lo_se, hi, hi_se


_SINGULAR = ("0 up to round-off: the joint moment is singular (some direction carries no variance among the "
             "patches on which student and teacher are both active)")


def _clean_gamma(gam: torch.Tensor, L: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """γ on the grid with round-off-level values (≤ 1e-10·max L, including tiny negatives) set to exactly 0;
    and whether γ(φ₀) was one of them."""
    tiny = gam <= 1e-10 * float(L.abs().max())
    return torch.where(tiny, torch.zeros_like(gam), gam), bool(tiny[-1])


def _at(t, i):
    return None if t is None else t[i]


def _guarantee_3_2(gam, L, beta, phi0, start, eps, theorem, model) -> Guarantee:
    """Theorem 3.2's step, contraction and iterations from γ(φ), L(φ) on the cap grid and β."""
    cond = Check("γ(φ) > 0 for φ ≤ φ₀ (Assumption: positive-definite joint moment)", None, None, None)
    if any(x is None for x in (*gam, *L, beta)):
        return Guarantee(theorem, model, Check(cond.statement, None, None, None, "an estimate is missing"),
                         None, None, None, None, "an estimate is missing")
    gmin = min(gam)
    cond = Check("min over φ ≤ φ₀ of γ(φ) > 0", gmin > 0, gmin, 0.0)
    if not gmin > 0:
        return Guarantee(theorem, model, cond, None, None, None, None,
                         f"γ(φ) = {gmin:.3g} ≤ 0 at some φ ≤ φ₀: the joint moment is singular and Theorem 3.2 gives no "
                         f"positive step")
    cap = min(theory.step_cap(g, l, beta) for g, l in zip(gam, L))
    contraction = theory.contraction_bound(cap, gmin)
    iters = _iterations(contraction, start, eps)
    iters_o = theory.iterations_bound(gam[-1], L[-1], beta, eps)
    return Guarantee(theorem, model, cond, cap, contraction, iters, iters_o)


def _guarantee_4_1(gam, L, beta, Lx, phi0, start, eps, k) -> Guarantee:
    theorem, model = "Theorem 4.1", f"convolutional model, k = {k} patches per image, average pooling"
    statement = "γ(φ₀) > 6·L_cross"
    if any(x is None for x in (*gam, *L, beta, Lx)):
        return Guarantee(theorem, model, Check(statement, None, None, None, "an estimate is missing"),
                         None, None, None, None, "an estimate is missing")
    cond = Check(statement, gam[-1] > 6 * Lx, gam[-1], 6 * Lx)
    if not cond.holds:
        return Guarantee(theorem, model, cond, None, None, None, None,
                         f"Theorem 4.1's condition fails (γ(φ₀) = {gam[-1]:.3g} ≤ 6·L_cross = {6 * Lx:.3g}): the "
                         f"theorem gives no step, no rate and no iteration count")
    margins = [g - 6 * Lx for g in gam]
    if min(margins) <= 0:
        return Guarantee(theorem, model, Check("γ(φ) > 6·L_cross for all φ ≤ φ₀", False, min(gam), 6 * Lx), None,
                         None, None, None, "γ(φ) ≤ 6·L_cross at some φ < φ₀ on the grid: the cap's minimum over "
                         "[0, φ₀] is not positive, so the theorem gives no step")
    cap = min(theory.conv_step_cap(g, l, beta, Lx) for g, l in zip(gam, L))
    contraction = theory.conv_contraction_bound(cap, min(gam), Lx)
    iters = _iterations(contraction, start, eps)
    iters_o = theory.conv_iterations_bound(gam[-1], L[-1], beta, Lx, eps)
    return Guarantee(theorem, model, cond, cap, contraction, iters, iters_o)


def _iterations(contraction, start, eps):
    """Steps for a squared-distance contraction c per step to take relative distance ``start`` to ``eps``."""
    if contraction is None or not 0 < contraction < 1:
        return None
    if eps >= start:
        return 0.0
    return math.ceil(2 * math.log(eps / start) / math.log(contraction))


def _run(Z, w_star, w0, eta, eta_source, steps, eps, start, bound, bound_source, model):
    """Gradient descent on Z from w0: (:class:`Run` with the fitted contraction of ‖w_t − w*‖² per step, History)."""
    if eta is None or not eta > 0:
        return Run(model, None, eta_source, steps, None, None, bound, bound_source, None, None, None, False,
                   "no positive step is available (pass eta= to choose one)"), None
    try:
        h = gradient_descent(w0, w_star, Z, eta=float(eta), steps=steps, record_every=1, progress=False)
    except FloatingPointError as exc:
        return Run(model, float(eta), eta_source, steps, None, None, bound, bound_source, None, None, None, False,
                   f"gradient descent diverged ({exc})"), None
    rel = h.relative_distance
    d2 = h.distance ** 2
    below = np.nonzero(~(rel > _FLOOR))[0]
    last = int(below[0]) if below.size else len(rel)                 # points before round-off level
    final = float(rel[-1])
    if last < 3:
        return Run(model, float(eta), eta_source, steps, None, None, bound, bound_source, None, final,
                   _steps_to(h, eps), False, "converged to round-off level within 2 steps: no rate to fit"), h
    t = h.step[:last].astype(float)
    slope = float(np.polyfit(t, np.log(d2[:last]), 1)[0])
    measured = math.exp(slope)
    worst = float(np.max(d2[1:last] / d2[:last - 1]))
    holds = None if bound is None else bool(worst <= bound * (1 + 1e-9))
    reached = _steps_to(h, eps)
    extrapolated = False
    if reached is None and measured < 1:
        reached = float(math.ceil(2 * math.log(eps / start) / slope)) if eps < start else 0.0
        extrapolated = True
    reason = None
    if measured > 1:
        reason = "the distance grew: gradient descent diverges at this step (try a smaller eta)"
    elif reached is None:
        reason = "the distance did not shrink: no iteration count"
    return Run(model, float(eta), eta_source, steps, measured, worst, bound, bound_source, holds, final, reached,
               extrapolated, reason), h


def _steps_to(h, eps):
    s = float(h.steps_to(eps))
    return s if math.isfinite(s) else None


def _progress(progress, total):
    show = config.progress_enabled() if progress is None else bool(progress)
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="diagnose", leave=False)


def diagnose(images, filter_size: int, stride: int = 1, w_star=None, *, n_images: int | None = 200,
             n_patches: int | None = 10_000, phi0: float = math.pi / 6, eps: float = 1e-3, n_directions: int = 16,
             steps: int = 300, eta: float | None = None, seed: int = 0, progress: bool | None = None) -> Diagnosis:
    """Is a ``filter_size``×``filter_size`` filter easy to learn on these images? (chapters/diagnose.md)

    ``images``: a torch tensor or numpy array (N, H, W) of real numbers (ints are converted; no rescaling).
    ``filter_size`` ≥ 2 and at most H and W; ``stride`` ≥ 1 (patches as :func:`filterlib.patches`, no padding).
    ``w_star``: the teacher, None or ``"random"`` (N(0, I) from ``seed``), ``"gabor"`` (PAPER_GABOR with this size)
    or an array of shape (s, s) or (s², ) (see :func:`resolve_teacher`). Loop over seeds for random teachers.

    Sample: ``n_images`` images drawn without replacement with ``seed`` (None: all), all their patches for the
    convolutional view, and ``n_patches`` of those patches (None: all) for the one-neuron view. ``phi0`` in (0, π/2)
    is the starting angle bound: gradient descent starts at ‖w₀ − w*‖ = sin(φ₀)‖w*‖ in a random direction (default
    π/6, i.e. half of ‖w*‖). ``eps`` in (0, 1) is the target relative distance. ``n_directions`` random directions
    per angle for the min/max of the estimators, ``steps`` of gradient descent, ``eta`` overrides the step of both
    runs (default: each theorem's largest step; see the module notes), ``progress`` a bar over the stages
    (default from FILTERLIB_PROGRESS).

    Returns a :class:`Diagnosis`. Raises TypeError/ValueError naming the parameter for bad inputs; never raises
    because a theorem's condition fails.
    """
    x = _check_images(images)
    s = v.positive_int(filter_size, "filter_size")
    stride = v.positive_int(stride, "stride")
    N, H, W = x.shape
    if s < 2:
        raise ValueError("filter_size must be at least 2: a 1×1 filter has p = 1 entry, and the angles of the "
                         "theory need p ≥ 2")
    if s > H or s > W:
        raise ValueError(f"filter_size={s} is larger than the images, which are {H}×{W}")
    if n_images is not None:
        n_images = v.positive_int(n_images, "n_images")
    if n_patches is not None:
        n_patches = v.positive_int(n_patches, "n_patches")
    phi0 = v.positive_float(phi0, "phi0")
    if not phi0 < math.pi / 2:
        raise ValueError(f"phi0 must lie in (0, π/2) so that the start is closer to w* than ‖w*‖, got {phi0!r}")
    eps = v.positive_float(eps, "eps")
    if not eps < 1:
        raise ValueError(f"eps must lie in (0, 1), got {eps!r}")
    n_directions = v.positive_int(n_directions, "n_directions")
    steps = v.positive_int(steps, "steps")
    if eta is not None:
        eta = v.positive_float(eta, "eta")
    seed = v.nonneg_int(seed, "seed")
    w_star, teacher = resolve_teacher(w_star, s, seed=seed)
    p = s * s

    stages = iter(["one-neuron constants", "convolutional constants", "closeness (Theorem 4.3)",
                   "gradient descent (one neuron)", "gradient descent (convolutional)", "done"])
    bar = _progress(progress, 6)
    if bar is not None:
        bar.set_postfix_str("patches")

    def tick(_finished: str):
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(next(stages))

    try:
        g = rng.generator(seed, "cpu")
        if n_images is not None and n_images < N:
            idx = torch.randperm(N, generator=g)[:n_images].sort().values
            x = x[idx]
        n = x.shape[0]
        Z = patches(x, s, stride)                                             # (n, k, p), float64
        k = Z.shape[1]
        flat = Z.reshape(-1, p)
        if n_patches is not None and n_patches < flat.shape[0]:
            flat = flat[torch.randperm(flat.shape[0], generator=g)[:n_patches]]
        Zp = flat[:, None, :].contiguous()                                    # (n_patches, 1, p)
        start = math.sin(phi0)
        u = torch.randn(p, generator=g, dtype=_DTYPE)
        w0 = w_star + start * w_star.norm() * u / u.norm()
        grid = phi0 * torch.arange(_CAP_POINTS, dtype=_DTYPE) / (_CAP_POINTS - 1)
        tick("patches")

        # One neuron on single patches: Definition 3.1 and Assumption 3.2.
        Bp = _batches(Zp.shape[0])
        S, counts = theory._candidates(Zp, w_star, grid, n_directions, seed, Bp or 1, "gamma")
        gp, gp_se, Lp, Lp_se = _pair(S, counts, Bp)
        gp, sing_p = _clean_gamma(gp, Lp)
        bp = theory.beta(Zp, w_star, n_directions=n_directions, seed=seed, return_se=Bp is not None,
                         n_batches=Bp or 10)
        bp, bp_se = bp if Bp is not None else (bp, None)
        del S
        tick("one-neuron constants")

        # The convolutional model: Assumptions 4.1 and 4.2.
        Bc = _batches(n)
        S, counts = theory._conv_candidates(Z, w_star, grid, n_directions, seed, Bc or 1, ["pos"])
        gc, gc_se, Lc, Lc_se = _pair(S["pos"], counts, Bc)
        gc, sing_c = _clean_gamma(gc, Lc)
        del S
        cross = theory.default_cross_grid(dtype=_DTYPE)
        bgrid = theory.default_beta_grid(dtype=_DTYPE)
        nb = bgrid.shape[0]
        if not torch.allclose(cross[-nb:], bgrid):                           # β's grid is the tail of L_cross's
            raise RuntimeError("filterlib.theory's default grids changed: default_cross_grid must end with "
                               "default_beta_grid")
        S, counts = theory._conv_candidates(Z, w_star, cross, n_directions, seed, Bc or 1,
                                            ["neg", "T1", "T2", "T4"])
        m = S["neg"].shape[2]
        neg = S["neg"][:, -nb:].reshape(S["neg"].shape[0], 1, nb * m, p, p)
        bc, bc_se = theory._extreme(neg, counts, (1 / bgrid).repeat_interleave(m)[None, :], False, Bc is not None)
        lx, lx_se = theory._cross_extreme([S["T1"], S["T2"], S["T4"]], counts, 1 / cross, True, Bc is not None)
        del S, neg
        tick("convolutional constants")

        # Theorem 4.3: closeness ρ, boundary mass μ, γ_avg.
        try:
            rho_e = _est(theory.rho(Z), None, "a maximum over the sample: grows with the number of images")
        except ValueError as exc:
            rho_e = Estimate(None, None, f"undefined: {exc}")
        mu_e = _est(theory.mu(Z, w_star), None, "a maximum over patch positions and a φ grid from ≈ 0.002 rad")
        Za = Z.mean(dim=1, keepdim=True)
        if float(Za.norm(dim=-1).max()) > 0:
            ga = theory.gamma(Za, w_star, phi0, n_directions=n_directions, seed=seed, return_se=Bc is not None,
                              n_batches=Bc or 10)
            ga, ga_se = ga if Bc is not None else (ga, None)
            ga_e = _est(max(float(ga), 0.0), ga_se, "0 up to round-off: singular" if float(ga) <= 0 else None)
        else:
            ga_e = Estimate(None, None, "every image's patch average is 0")
        tick("closeness (Theorem 4.3)")

        patch = {"gamma": _est(gp[-1], _at(gp_se, -1), _SINGULAR if sing_p else None),
                 "L": _est(Lp[-1], _at(Lp_se, -1)), "beta": _est(bp, bp_se)}
        lx_reason = "exactly 0 for k = 1" if k == 1 else None
        conv = {"gamma": _est(gc[-1], _at(gc_se, -1), _SINGULAR if sing_c else None),
                "L": _est(Lc[-1], _at(Lc_se, -1)), "beta": _est(bc[0], _at(bc_se, 0)),
                "L_cross": _est(lx, lx_se, lx_reason), "rho": rho_e, "mu": mu_e, "gamma_avg": ga_e}
        closeness = _closeness_checks(conv)

        gam_p, L_p = [float(t) for t in gp], [float(t) for t in Lp]
        gam_c, L_c = [float(t) for t in gc], [float(t) for t in Lc]
        th32 = _guarantee_3_2(gam_p, L_p, float(bp), phi0, start, eps, "Theorem 3.2",
                              "one neuron trained on single patches (k = 1)")
        th41 = _guarantee_4_1(gam_c, L_c, float(bc[0]), float(lx), phi0, start, eps, k)

        # Gradient descent, one neuron on the patch sample.
        if eta is not None:
            eta_p, src_p = eta, "given"
        else:
            eta_p, src_p = th32.step_cap, "Theorem 3.2's largest step"
        if eta_p is None:
            eta_p, src_p = _smooth_step(L_p, float(bp)), "no theorem: 1/(max L + 4β), a smoothness-only step"
        bound_p, bsrc_p = _bound_3_2(eta_p, th32, gam_p)
        run_patch, run_patch_h = _run(Zp, w_star, w0, eta_p, src_p, steps, eps, start, bound_p, bsrc_p,
                                      "one neuron on single patches")
        tick("gradient descent (one neuron)")

        # Gradient descent, the convolutional model on the images' patches.
        heuristic = None
        if min(gam_c) > 0:
            heuristic = min(theory.step_cap(g_, l_, float(bc[0])) for g_, l_ in zip(gam_c, L_c))
        if eta is not None:
            eta_c, src_c = eta, "given"
        elif th41.step_cap is not None:
            eta_c, src_c = th41.step_cap, "Theorem 4.1's largest step"
        else:
            eta_c, src_c = _smooth_step(L_c, float(bc[0])), "no theorem: 1/(max L + 4β), a smoothness-only step"
        bound_c, bsrc_c = _bound_4_1(eta_c, th41, gam_c, float(lx), heuristic)
        run_conv, run_conv_h = _run(Z, w_star, w0, eta_c, src_c, steps, eps, start, bound_c, bsrc_c,
                                    f"convolutional model (k = {k})")
        tick("gradient descent (convolutional)")
    finally:
        if bar is not None:
            bar.close()

    setup = {"n_images": n, "n_images_given": N, "height": H, "width": W, "filter_size": s, "stride": stride,
             "p": p, "k": k, "n_patches": int(Zp.shape[0]), "teacher": teacher,
             "teacher_norm": float(w_star.norm()), "phi0": phi0, "start": start, "eps": eps,
             "n_directions": n_directions, "steps": steps, "seed": seed,
             "phi_grid_for_caps": [float(t) for t in grid]}
    verdict = _verdict(patch, th32, th41, run_conv, k, phi0)
    details = {"w_star": w_star, "w0": w0, "patch_sample": Zp, "history_patch": run_patch_h,
               "history_conv": run_conv_h}
    return Diagnosis(setup, patch, conv, closeness, th32, th41, run_patch, run_conv, verdict, details)


def _bound_3_2(eta, th, gam):
    if eta is None:
        return None, "none: no step"
    if th.step_cap is None:
        return None, f"none: {th.reason}"
    if eta > th.step_cap * (1 + 1e-12):
        return None, f"none: η exceeds Theorem 3.2's cap {th.step_cap:.3g}"
    return theory.contraction_bound(eta, min(gam)), "Theorem 3.2: 1 − η·min γ/2"


def _smooth_step(L, beta):
    denom = max(L) + 4 * beta
    return 1 / denom if denom > 0 and math.isfinite(denom) else None


def _bound_4_1(eta, th, gam, lx, heuristic=None):
    if eta is None:
        return None, "none: no step"
    if th.step_cap is None:
        if heuristic is not None and heuristic > 0 and eta <= heuristic * (1 + 1e-12):
            return (theory.contraction_bound(eta, min(gam)),
                    "heuristic, no theorem: Theorem 3.2's 1 − η·min γ/2 with the conv constants")
        return None, "none: Theorem 4.1's condition fails"
    if eta > th.step_cap * (1 + 1e-12):
        return None, f"none: η exceeds Theorem 4.1's cap {th.step_cap:.3g}"
    return theory.conv_contraction_bound(eta, min(gam), lx), "Theorem 4.1: 1 − η(min γ − 6L_cross)/2"


def _closeness_checks(conv) -> dict:
    note = "Theorem 4.3 assumes unit-norm patches; these patches are not normalised"
    ga, rho_, gam = conv["gamma_avg"].value, conv["rho"].value, conv["gamma"].value
    if None in (ga, rho_, gam):
        lower = Check("γ(φ₀) ≥ γ_avg(φ₀) − 4(1 − cos ρ)", None, gam, None, "an estimate is missing")
    else:
        bound = ga - 4 * (1 - math.cos(rho_))
        lower = Check("γ(φ₀) ≥ γ_avg(φ₀) − 4(1 − cos ρ)", gam >= bound, gam, bound, note)
    lx, mu_ = conv["L_cross"].value, conv["mu"].value
    if None in (lx, mu_):
        upper = Check("L_cross ≤ 3μ", None, lx, None, "an estimate is missing")
    else:
        upper = Check("L_cross ≤ 3μ", lx <= 3 * mu_, lx, 3 * mu_, note)
    return {"gamma_lower_bound": lower, "L_cross_upper_bound": upper}


def _verdict(patch, th32, th41, run, k, phi0) -> str:
    parts = []
    g, L = patch["gamma"].value, patch["L"].value
    if g is not None and L:
        ref = (math.pi - phi0 - math.sin(phi0)) / (math.pi - phi0 + math.sin(phi0))     # N(0, I) patches
        parts.append(f"single patches have smoothness γ/L = {g / L:.3g} at φ₀ (N(0, I) noise has {ref:.2f}; the "
                     f"smaller, the slower)")
    if th32.step_cap is not None:
        parts.append(f"Theorem 3.2 guarantees one neuron a linear rate (at most {th32.iterations:.3g} steps to ε at "
                     f"η = {th32.step_cap:.3g})")
    else:
        parts.append(f"Theorem 3.2 gives no guarantee ({th32.reason})")
    if k > 1:
        if th41.step_cap is not None:
            parts.append(f"Theorem 4.1 applies to the convolutional filter (at most {th41.iterations:.3g} steps to ε)")
        else:
            parts.append("Theorem 4.1 does not apply to the convolutional filter: " + (th41.reason or ""))
    if run.measured_contraction is not None and run.measured_contraction >= 1:
        parts.append(f"gradient descent on the convolutional model did not converge at η = {run.eta:.3g} "
                     f"(‖w − w*‖² changed by a factor {run.measured_contraction:.6g} per step)")
    elif run.measured_contraction is not None:
        how = "extrapolated" if run.extrapolated else "measured"
        rate = (f"gradient descent on the convolutional model contracted ‖w − w*‖² by "
                f"{run.measured_contraction:.6g} per step")
        if run.iterations_measured is not None:
            rate += f" ({run.iterations_measured:.3g} steps to ε, {how})"
        parts.append(rate)
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]
