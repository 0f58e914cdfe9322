"""The orchestration of :func:`filterlib.diagnose` (chapters/diagnose.md): check the arguments, then run the stages.

Each stage is a function of the shared :class:`_State`, registered with its progress label by ``@_stage(label)``
in the order it runs (:data:`STAGES`): draw the sample, estimate the one-neuron constants, the convolutional
constants and Theorem 4.3's closeness, then run gradient descent for each model next to its theorem's guarantee.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .. import _validate as v
from .. import config, rng, theory
from ..data.files import as_images
from ..data.teachers import resolve_teacher
from ..model import patches
from . import causes as ca
from . import guarantees as gu
from .results import Diagnosis, Estimate, Guarantee, Run
from .runs import run

_DTYPE = torch.float64          # every estimate is made in float64 (λ_min of real patches can be ~1e-6 of λ_max)
_CAP_POINTS = 4                 # the step caps' min over φ ∈ [0, φ₀] runs over φ₀·(0, 1/3, 2/3, 1)
_SINGULAR = ("0 up to round-off: the joint moment is singular (some direction carries no variance among the "
             "patches on which student and teacher are both active)")
_NO_THEOREM = "no theorem: 1/(max L + 4β), a smoothness-only step"


@dataclass(frozen=True)
class _Options:
    """The checked arguments of :func:`diagnose`."""

    filter_size: int
    stride: int
    n_images: int | None
    n_patches: int | None
    phi0: float
    eps: float
    n_directions: int
    steps: int
    eta: float | None
    seed: int
    center: bool = False
    max_patches: int | None = None


@dataclass
class _State:
    """What the stages share: the inputs, then the sample, then per model the constants on the cap grid
    (``curves["patch"]`` = (γ(φ), L(φ), β), ``curves["conv"]`` = (γ(φ), L(φ), β, L_cross), lists and floats), the
    estimates, the guarantees and the runs."""

    opt: _Options
    images: torch.Tensor                      # (N, H, W), all given images
    w_star: torch.Tensor
    teacher: str
    Z: torch.Tensor | None = None             # (n, k, p): every patch of the n chosen images (or their crops)
    chosen: torch.Tensor | None = None        # (n, H, W): the n chosen images, whole
    crop: dict | None = None                  # how the convolutional view was cut to max_patches, or None
    activation: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    Zp: torch.Tensor | None = None            # (n_patches, 1, p): single patches for the one-neuron view
    w0: torch.Tensor | None = None
    grid: torch.Tensor | None = None          # the φ grid of the step caps, ending at φ₀
    start: float = 0.0                        # sin φ₀: the start's relative distance
    curves: dict = field(default_factory=dict)
    patch: dict = field(default_factory=dict)
    conv: dict = field(default_factory=dict)
    closeness: dict = field(default_factory=dict)
    theorem_3_2: Guarantee | None = None
    run_patch: Run | None = None
    theorem_4_1: Guarantee | None = None
    run_conv: Run | None = None
    histories: dict = field(default_factory=dict)


STAGES: list = []
"""(progress label, stage) pairs in the order :func:`diagnose` runs them."""


def _stage(label: str):
    def register(fn):
        STAGES.append((label, fn))
        return fn
    return register


# --------------------------------------------------------------------------------------------------------------
# The stages


@_stage("patches")
def _draw_sample(st: _State) -> None:
    """Subsample the images, cut them into patches (the convolutional view within ``max_patches``, by random crops
    of the images where they give more), draw the single patches, the start w₀ and the cap grid."""
    o, x = st.opt, st.images
    s, p = o.filter_size, o.filter_size ** 2
    g = rng.generator(o.seed, "cpu")
    if o.n_images is not None and o.n_images < x.shape[0]:
        x = x[torch.randperm(x.shape[0], generator=g, device=g.device)[:o.n_images].sort().values]
    st.chosen = x
    n, H, W = x.shape
    kh, kw = (H - s) // o.stride + 1, (W - s) // o.stride + 1
    if o.max_patches is None or n * kh * kw <= o.max_patches:
        st.Z = patches(x, s, o.stride)                                     # (n, k, p), float64
        flat = st.Z.reshape(-1, p)
        if o.n_patches is not None and o.n_patches < flat.shape[0]:
            flat = flat[torch.randperm(flat.shape[0], generator=g, device=g.device)[:o.n_patches]]
    else:                                                                  # large images: never all patches at once
        flat = _some_patches(x, s, o.stride, o.n_patches or o.max_patches, g)
        st.Z, st.crop = _cropped(x, s, o.stride, o.max_patches, g)
    st.Zp = flat[:, None, :].contiguous()                                  # (n_patches, 1, p)
    st.start = math.sin(o.phi0)
    u = torch.randn(p, generator=g, dtype=_DTYPE, device=g.device)
    st.w0 = st.w_star + st.start * st.w_star.norm() * u / u.norm()
    st.grid = o.phi0 * torch.arange(_CAP_POINTS, dtype=_DTYPE) / (_CAP_POINTS - 1)
    st.activation = _activation(st)


def _some_patches(x: torch.Tensor, s: int, stride: int, m: int, g) -> torch.Tensor:
    """``m`` patches (m, s²) drawn uniformly with replacement from all positions of all images, without cutting
    every patch."""
    n, H, W = x.shape
    kh, kw = (H - s) // stride + 1, (W - s) // stride + 1
    idx = torch.randint(0, n * kh * kw, (m,), generator=g, device=g.device)
    i, rest = idx // (kh * kw), idx % (kh * kw)
    r, c = (rest // kw) * stride, (rest % kw) * stride
    off = torch.arange(s)
    rows = (r[:, None] + off[None, :])[:, :, None]                         # (m, s, 1)
    cols = (c[:, None] + off[None, :])[:, None, :]                         # (m, 1, s)
    return x[i[:, None, None], rows, cols].reshape(m, s * s)


def _cropped(x: torch.Tensor, s: int, stride: int, max_patches: int, g) -> tuple[torch.Tensor, dict]:
    """The patches (n', k', p) of random square crops of the images, the largest crop for which n'·k' ≤
    ``max_patches`` (n' = n unless even s×s crops are too many), and a description of the cut."""
    n, H, W = x.shape
    side = s
    for c in range(min(H, W), s - 1, -1):
        if n * ((c - s) // stride + 1) ** 2 <= max_patches:
            side = c
            break
    if n * ((side - s) // stride + 1) ** 2 > max_patches:                   # even one patch per image is too many
        x = x[torch.randperm(n, generator=g, device=g.device)[:max_patches].sort().values]
        n = x.shape[0]
    top = torch.randint(0, H - side + 1, (n,), generator=g, device=g.device)
    left = torch.randint(0, W - side + 1, (n,), generator=g, device=g.device)
    off = torch.arange(side)
    crops = x[torch.arange(n)[:, None, None], (top[:, None] + off)[:, :, None], (left[:, None] + off)[:, None, :]]
    Z = patches(crops, s, stride)
    return Z, {"side": side, "n_images": n, "k": int(Z.shape[1]), "max_patches": max_patches,
               "note": f"the convolutional view uses a random {side}×{side} crop of each of {n} images (k = "
                       f"{Z.shape[1]} patches each) to stay within max_patches = {max_patches}"}


def _activation(st: _State) -> dict:
    """The fractions of all patches of the chosen images (and of the images: at least one active patch) on which
    the teacher w* and the start w₀ are active (wᵀz > 0), by one convolution of the whole images."""
    x, s, stride = st.chosen, st.opt.filter_size, st.opt.stride
    out = {}
    for name, w in (("teacher", st.w_star), ("start", st.w0)):
        act = F.conv2d(x[:, None], w.reshape(1, 1, s, s), stride=stride)[:, 0] > 0     # (n, kh, kw)
        out[f"{name}_active_fraction"] = float(act.double().mean())
        out[f"{name}_active_image_fraction"] = float(act.reshape(act.shape[0], -1).any(dim=1).double().mean())
    out["n_patches_counted"] = int(act.numel())
    out["warnings"] = ca.activation_warnings(out)
    return out


@_stage("one-neuron constants")
def _patch_constants(st: _State) -> None:
    """Definition 3.1 γ(φ), L(φ) on the cap grid and Assumption 3.2 β, on single patches."""
    c = _constants(st, st.Zp, ("gamma", "L", "beta"))
    (gam, gam_se), (L, L_se), (beta, beta_se) = c["gamma"], c["L"], c["beta"]
    gam, singular = _clean_gamma(gam, L)
    st.patch = {"gamma": Estimate.of(gam[-1], _at(gam_se, -1), _SINGULAR if singular else None),
                "L": Estimate.of(L[-1], _at(L_se, -1)), "beta": Estimate.of(beta, beta_se)}
    st.curves["patch"] = ([float(t) for t in gam], [float(t) for t in L], float(beta))


@_stage("convolutional constants")
def _conv_constants(st: _State) -> None:
    """Assumption 4.1 γ(φ), L(φ) on the cap grid and β, Assumption 4.2 L_cross, on the images' patch sets."""
    c = _constants(st, st.Z, ("gamma", "L", "beta", "L_cross"))
    (gam, gam_se), (L, L_se), (beta, beta_se), (lx, lx_se) = c["gamma"], c["L"], c["beta"], c["L_cross"]
    gam, singular = _clean_gamma(gam, L)
    n, p = st.Z.shape[0], st.Z.shape[2]
    reason = (ca.too_few_images(n, p) if n < p else _SINGULAR) if singular else None
    st.conv = {"gamma": Estimate.of(gam[-1], _at(gam_se, -1), reason),
               "L": Estimate.of(L[-1], _at(L_se, -1)), "beta": Estimate.of(beta, beta_se),
               "L_cross": Estimate.of(lx, lx_se, "exactly 0 for k = 1" if st.Z.shape[1] == 1 else None)}
    st.curves["conv"] = ([float(t) for t in gam], [float(t) for t in L], float(beta), float(lx))


@_stage("closeness (Theorem 4.3)")
def _closeness(st: _State) -> None:
    """Theorem 4.3's closeness ρ, boundary mass μ and γ_avg(φ₀) of the patch averages, and its two claims."""
    o, Z = st.opt, st.Z
    try:
        rho = Estimate.of(theory.rho(Z), None, "a maximum over the sample: grows with the number of images")
    except ValueError as exc:
        rho = Estimate(None, None, f"undefined: {exc}")
    mu = Estimate.of(theory.mu(Z, st.w_star), None, "a maximum over patch positions and a φ grid from ≈ 0.002 rad")
    Za = Z.mean(dim=1, keepdim=True)
    if float(Za.norm(dim=-1).max()) > 0:
        B = _batches(Z.shape[0])
        ga = theory.gamma(Za, st.w_star, o.phi0, n_directions=o.n_directions, seed=o.seed, return_se=B is not None,
                          n_batches=B or 10)
        ga, ga_se = ga if B is not None else (ga, None)
        gamma_avg = Estimate.of(max(float(ga), 0.0), ga_se, "0 up to round-off: singular" if float(ga) <= 0 else None)
    else:
        gamma_avg = Estimate(None, None, "every image's patch average is 0")
    st.conv.update(rho=rho, mu=mu, gamma_avg=gamma_avg)
    st.closeness = gu.closeness_conditions(st.conv)


@_stage("gradient descent (one neuron)")
def _run_one_neuron(st: _State) -> None:
    """Theorem 3.2's guarantee, and gradient descent for one neuron on the single patches at its step."""
    o, (gam, L, beta) = st.opt, st.curves["patch"]
    th = gu.theorem_3_2(gam, L, beta, st.start, o.eps)
    if o.eta is not None:
        eta, source = o.eta, "given"
    else:
        eta, source = th.step_cap, "Theorem 3.2's largest step"
    if eta is None:
        eta, source = gu.smoothness_step(L, beta), _NO_THEOREM
    bound, bound_source = gu.run_bound_3_2(eta, th, gam)
    st.theorem_3_2 = th
    st.run_patch, st.histories["history_patch"] = run(st.Zp, st.w_star, st.w0, eta, source, o.steps, o.eps, st.start,
                                                      bound, bound_source, "one neuron on single patches")


@_stage("gradient descent (convolutional)")
def _run_convolutional(st: _State) -> None:
    """Theorem 4.1's guarantee, and gradient descent for the convolutional model at its step (or a fallback)."""
    o, (gam, L, beta, lx), k = st.opt, st.curves["conv"], st.Z.shape[1]
    th = gu.theorem_4_1(gam, L, beta, lx, st.start, o.eps, k)
    if o.eta is not None:
        eta, source = o.eta, "given"
    elif th.step_cap is not None:
        eta, source = th.step_cap, "Theorem 4.1's largest step"
    else:
        eta, source = gu.smoothness_step(L, beta), _NO_THEOREM
    bound, bound_source = gu.run_bound_4_1(eta, th, gam, lx, gu.heuristic_cap(gam, L, beta))
    st.theorem_4_1 = th
    st.run_conv, st.histories["history_conv"] = run(st.Z, st.w_star, st.w0, eta, source, o.steps, o.eps, st.start,
                                                    bound, bound_source, f"convolutional model (k = {k})")


# --------------------------------------------------------------------------------------------------------------
# Helpers of the stages


def _constants(st: _State, Z: torch.Tensor, which: tuple) -> dict:
    """{name: (value, se or None)} from one call of :func:`filterlib.theory.constants` on the cap grid."""
    B = _batches(Z.shape[0])
    c = theory.constants(Z, st.w_star, st.grid, which=which, n_directions=st.opt.n_directions, seed=st.opt.seed,
                         return_se=B is not None, n_batches=B or 10)
    return {name: (val if B is not None else (val, None)) for name, val in c.items()}


def _batches(n: int) -> int | None:
    """Batch count for the error bars (10, or fewer for a small sample); None when n is too small for any."""
    if n >= 20:
        return 10
    if n >= 4:
        return n // 2
    return None


def _clean_gamma(gam: torch.Tensor, L: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """γ on the grid with round-off-level values (≤ 1e-10·max L, including tiny negatives) set to exactly 0;
    and whether γ(φ₀) was one of them."""
    tiny = gam <= 1e-10 * float(L.abs().max())
    return torch.where(tiny, torch.zeros_like(gam), gam), bool(tiny[-1])


def _at(t, i):
    return None if t is None else t[i]


def _progress(progress, total):
    show = config.progress_enabled() if progress is None else bool(progress)
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="diagnose", leave=False)


# --------------------------------------------------------------------------------------------------------------
# diagnose


def _check_arguments(images, filter_size, stride, n_images, n_patches, phi0, eps, n_directions, steps, eta,
                     seed, center=False, max_patches=None) -> tuple[torch.Tensor, _Options]:
    x = as_images(images)
    center = v.flag(center, "center")
    if max_patches is not None:
        max_patches = v.positive_int(max_patches, "max_patches")
    s = v.positive_int(filter_size, "filter_size")
    stride = v.positive_int(stride, "stride")
    _, H, W = x.shape
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
    seed = v.seed(seed, "seed")
    if center:
        x = x - x.mean(dim=(1, 2), keepdim=True)
    return x, _Options(s, stride, n_images, n_patches, phi0, eps, n_directions, steps, eta, seed, center,
                       max_patches)


def diagnose(images, filter_size: int, stride: int = 1, w_star=None, *, n_images: int | None = 200,
             n_patches: int | None = 10_000, phi0: float = math.pi / 6, eps: float = 1e-3, n_directions: int = 16,
             steps: int = 300, eta: float | None = None, seed: int = 0, center: bool = False,
             max_patches: int | None = 250_000, source: dict | None = None,
             progress: bool | None = None) -> Diagnosis:
    """Is a ``filter_size``×``filter_size`` filter easy to learn on these images? Defined in chapters/diagnose.md.

    ``images``: a torch tensor or numpy array (N, H, W) of real numbers (ints are converted; no rescaling).
    ``filter_size`` ≥ 2 and at most H and W; ``stride`` ≥ 1 (patches as :func:`filterlib.patches`, no padding).
    ``w_star``: the teacher, None or ``"random"`` (N(0, I) from ``seed``), ``"gabor"`` (PAPER_GABOR with this size)
    or an array of shape (s, s) or (s², ) (see :func:`filterlib.data.resolve_teacher`). Loop over seeds for random
    teachers.

    Sample: ``n_images`` images drawn without replacement with ``seed`` (None: all), all their patches for the
    convolutional view, and ``n_patches`` of those patches (None: all) for the one-neuron view. ``phi0`` in (0, π/2)
    is the starting angle bound: gradient descent starts at ‖w₀ − w*‖ = sin(φ₀)‖w*‖ in a random direction (default
    π/6, i.e. half of ‖w*‖). ``eps`` in (0, 1) is the target relative distance. ``n_directions`` random directions
    per angle for the min/max of the estimators, ``steps`` of gradient descent, ``eta`` overrides the step of both
    runs (default: each theorem's largest step; see :mod:`filterlib.diagnosis`), ``progress`` a bar over the
    stages (default from FILTERLIB_PROGRESS).

    ``center``: subtract each image's mean pixel first (a teacher whose entries do not sum to about 0 is dead or
    linear on uncentred pixels). ``max_patches`` (None: no limit) bounds the convolutional view: where the chosen
    images give more patches, it uses a random square crop of each image, the largest that fits (the report says
    so), and the one-neuron patches are drawn from all positions without cutting every patch. ``source``: how the
    images were read (the dict of :func:`filterlib.data.files.read_images`), shown in the report; by default the
    array's type and dtype. The report always gives the fractions of patches on which the teacher and the start are
    active and, when γ is 0 or tiny, the causes it can measure (dead teacher, fewer images than p, constant
    patches, uncentred pixels) with the change that would test each.

    Returns a :class:`~filterlib.diagnosis.Diagnosis`. Raises TypeError/ValueError naming the parameter for bad
    inputs; never raises because a theorem's condition fails.
    """
    given = _describe(images, source)
    x, opt = _check_arguments(images, filter_size, stride, n_images, n_patches, phi0, eps, n_directions, steps, eta,
                              seed, center, max_patches)
    w, teacher = resolve_teacher(w_star, opt.filter_size, seed=opt.seed)
    st = _State(opt, x, w, teacher)
    st.source = given
    bar = _progress(progress, len(STAGES))
    try:
        for label, stage in STAGES:
            if bar is not None:
                bar.set_postfix_str(label)
            stage(st)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.set_postfix_str("done")
    finally:
        if bar is not None:
            bar.close()
    return _diagnosis(st)


def _describe(images, source) -> dict:
    """How the images were read: ``source`` as given, or the array's type and dtype."""
    if source is not None:
        if not isinstance(source, dict):
            raise TypeError(f"source must be a dict (as read_images returns) or None, got {type(source).__name__}")
        return dict(source)
    dtype = getattr(images, "dtype", None)
    return {"source": f"{type(images).__module__.split('.')[0]} {type(images).__name__}", "format": "array",
            "files": None, "modes": {}, "dtype": str(dtype), "conversion": "none",
            "scale": "as given (no rescaling)"}


def _pixels(x: torch.Tensor) -> dict:
    return {"min": float(x.min()), "max": float(x.max()), "mean": float(x.mean()), "std": float(x.std())}


def _diagnosis(st: _State) -> Diagnosis:
    """The :class:`Diagnosis` of the finished stages."""
    o, (N, H, W), (n, k, p) = st.opt, st.images.shape, st.Z.shape
    n_chosen = st.chosen.shape[0]
    setup = {"n_images": n, "n_images_given": N, "height": H, "width": W, "filter_size": o.filter_size,
             "stride": o.stride, "p": p, "k": k, "n_patches": int(st.Zp.shape[0]), "teacher": st.teacher,
             "teacher_norm": float(st.w_star.norm()), "phi0": o.phi0, "start": st.start, "eps": o.eps,
             "n_directions": o.n_directions, "steps": o.steps, "seed": o.seed,
             "phi_grid_for_caps": [float(t) for t in st.grid],
             "input": {**st.source, "center": o.center, "pixels": _pixels(st.chosen)},
             "teacher_sum": float(st.w_star.sum()), "n_images_chosen": n_chosen, "max_patches": o.max_patches,
             "crop": st.crop}
    found = ca.causes(st.patch, st.conv, st.activation, setup, st.Zp)
    verdict = gu.verdict(st.patch, st.theorem_3_2, st.theorem_4_1, st.run_conv, k, o.phi0, found)
    details = {"w_star": st.w_star, "w0": st.w0, "patch_sample": st.Zp, **st.histories}
    return Diagnosis(setup, st.patch, st.conv, st.closeness, st.theorem_3_2, st.theorem_4_1, st.run_patch,
                     st.run_conv, verdict, details, activation=st.activation, causes=found)
