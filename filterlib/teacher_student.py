"""Teacher-student learning of one filter on real images (Part III, chapters/mnist.md; the paper's Section 5).

The labels come from a teacher filter, y = f(w*, X), on real images cut into patches; the student starts at a
chosen distance from w* and is trained with :func:`filterlib.sgd_images` (or :func:`filterlib.train.sgd` on a
patch tensor). This module holds the few pieces that setting needs beyond the model:

* :func:`teacher_sample`: patches Z and teacher labels y of a stack of images (Fig. 3(c)/(d));
* :func:`init_at_distance`: starts with ‖w₀ − w*‖ = r‖w*‖ in uniformly random directions (Fig. 3(c)/(d));
* :func:`patch_spectrum`, :func:`curvature_spectrum` and :func:`low_variance_share`: the eigen-spectra of the
  patch second moment E[Z_i Z_iᵀ] and of the curvature E[Z_{w*} Z_{w*}ᵀ] at w*, and the share of ‖w − w*‖² in
  their low-variance directions (the paper's "low-dimensional manifold" explanation, Fig. 5);
* :func:`relative_loss_curve`: the relative loss of every recorded iterate of an SGD run (Fig. 3(c)/(d)), in base
  10 or e;
* :func:`relative_loss_images`: the relative loss of filters on a large set of images, in chunks;
* :func:`interpolation_curve`: the relative loss along w_inter = λw + (1 − λ)w* (Fig. 5).

The relative loss itself is :func:`filterlib.model.relative_loss`.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch

from . import _validate as v
from . import kernel, rng
from .initialization import directions
from .model import patches, relative_loss
from .train import History


def teacher_sample(images, w_star, size=5, stride=1) -> tuple[torch.Tensor, torch.Tensor]:
    """Patches and teacher labels of real images (Fig. 3(c)/(d)): returns ``(Z, y)`` with y = f(w*, Z).

    ``images`` (N, H, W), e.g. :func:`filterlib.data.mnist` pixels in [0, 1]; ``w_star`` the teacher filter
    flattened row-major, shape (p,) with p = size² (``gabor(...).reshape(-1)`` for a Gabor filter), or T teachers
    (T, p) sharing the patches; ``size`` and ``stride`` as for :func:`filterlib.model.patches` (no padding).
    ``Z`` has shape (N, k, p) and ``y`` shape (N,), or (T, N) for T teachers. A 28×28 image with size 5 and
    stride 1 has k = 24² = 576 patches. Defined in chapters/mnist.md.
    """
    Z = patches(images, size, stride)
    w_star = v.tensor(w_star, "w_star", ndim=(1, 2))
    v.same_float(w_star, Z, "w_star", "images")
    v.check_size(w_star, Z.shape[-1], "w_star", of=f" (the patch size given by size={size!r}; flatten a 2-D filter "
                 "row-major with .reshape(-1))")
    return Z, kernel.outputs(w_star, Z)


def _fractions(fractions) -> torch.Tensor:
    if isinstance(fractions, numbers.Real) and not isinstance(fractions, bool):
        fractions = [fractions]
    try:
        r = torch.as_tensor(np.asarray(fractions, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"fractions must be a number or a 1-D list of numbers, got {fractions!r}") from exc
    if r.dim() != 1 or r.numel() == 0:
        raise ValueError(f"fractions must be a non-empty 1-D list of numbers, got shape {tuple(r.shape)}")
    if not bool(torch.isfinite(r).all()) or bool((r < 0).any()):
        raise ValueError(f"fractions must be finite and non-negative, got {r.tolist()}")
    return r


def init_at_distance(w_star, fractions, *, repeats: int = 1, seed: int | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Starts w₀ = w* + r‖w*‖u with u uniform on the unit sphere, for each r in ``fractions`` (Fig. 3(c)/(d)).

    So ‖w₀ − w*‖ = r‖w*‖ exactly (the paper's legend: r ∈ {1, 0.75, 0.5}). Returns shape
    (len(fractions)·repeats, p) in w*'s dtype and device, ordered fraction by fraction: row i·repeats + j is
    fraction i, repeat j, so ``.reshape(len(fractions), repeats, p)`` separates them. Every row has its own
    direction. Pass either ``seed`` or ``generator`` (filterlib never uses torch's global RNG). Defined in
    chapters/mnist.md.
    """
    w_star = v.tensor(w_star, "w_star", ndim=1)
    v.nonzero_rows(w_star, "w_star")
    r = _fractions(fractions)
    repeats = v.positive_int(repeats, "repeats")
    g = rng.resolve_generator(generator, seed)
    p = w_star.shape[0]
    u = directions(r.numel() * repeats, p, g, w_star.dtype).to(w_star.device)
    radius = (r.to(w_star) * w_star.norm()).repeat_interleave(repeats)[:, None]
    return w_star + radius * u


def _flat_patches(Z) -> torch.Tensor:
    Z = v.tensor(Z, "Z", ndim=3)
    return Z.reshape(-1, Z.shape[-1])


def patch_spectrum(Z, *, skip_zero: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of the patch second moment M = E[Z_i Z_iᵀ] over all patches of a sample Z (n, k, p)
    (Fig. 5, the "low-dimensional manifold" test; chapters/mnist.md).

    With ``skip_zero`` (default) the mean runs over the non-zero patches only (blank background patches add
    nothing to M's sum; they change its scale, not its eigenvectors). Returns ``(eigenvalues, eigenvectors)``:
    eigenvalues in *decreasing* order, shape (p,), and the matching unit eigenvectors as the columns of a (p, p)
    matrix. Computed in float64 (eigh), returned in Z's dtype and device.
    """
    X = _flat_patches(Z)
    if v.flag(skip_zero, "skip_zero"):
        X = X[(X != 0).any(dim=-1)]
        if X.shape[0] == 0:
            raise ValueError("Z has no non-zero patch, so its patch second moment over non-zero patches is undefined")
    X = X.double()
    values, vectors = torch.linalg.eigh(X.T @ X / X.shape[0])
    return values.flip(0).clamp(min=0).to(Z.dtype), vectors.flip(1).to(Z.dtype)


def curvature_spectrum(w_star, Z) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of H = E[Z_{w*} Z_{w*}ᵀ], Z_{w*} = (1/k) Σ_i Z_i 1{w*ᵀZ_i ≥ 0}, on a sample Z
    (n, k, p) (Fig. 3(c)/(d) step size, Fig. 5 analysis; chapters/mnist.md).

    H is the Hessian of the loss ℓ at w = w* (wherever no patch lies on w*'s boundary): the curvature that SGD
    sees near the teacher. Its largest eigenvalue sets the usable step (η < 2/λ_max for gradient descent); its
    small eigenvalues are the directions along which the loss hardly changes. Unlike :func:`patch_spectrum`, it
    describes the *pooled* inputs, the per-image averages of active patches. Returns ``(eigenvalues,
    eigenvectors)`` as :func:`patch_spectrum` (decreasing, columns; float64 internally, Z's dtype out).
    """
    Z = v.tensor(Z, "Z", ndim=3)
    w_star = v.vector(w_star, "w_star", like=Z)
    Zd = Z.double()
    active = (Zd @ w_star.double() >= 0).to(Zd.dtype)                     # (n, k)
    pooled = torch.einsum("nk,nkp->np", active, Zd) / Z.shape[1]          # Z_{w*} per input, (n, p)
    values, vectors = torch.linalg.eigh(pooled.T @ pooled / Z.shape[0])
    return values.flip(0).clamp(min=0).to(Z.dtype), vectors.flip(1).to(Z.dtype)


def low_variance_share(delta, Z, *, threshold: float = 1e-2, w_star=None, skip_zero: bool = True) -> torch.Tensor:
    """Share of ‖δ‖² in the low-variance directions of the data (Fig. 5; chapters/mnist.md), a number in [0, 1].

    The low-variance directions are the eigenvectors whose eigenvalue is at most ``threshold`` × the largest one,
    of the patch second moment :func:`patch_spectrum`(Z) by default, or of the curvature
    :func:`curvature_spectrum`(w_star, Z) when ``w_star`` is given: directions along which the inputs hardly vary,
    where two filters give nearly the same output. For δ = w_learned − w*, a share near 1 supports the paper's
    explanation that the learned and true filters differ only along such directions. ``delta`` (p,) gives a 0-d
    tensor, (R, p) gives (R,). A random direction has expected share (number of low-variance directions)/p.
    δ = 0 raises ValueError.
    """
    delta = v.tensor(delta, "delta", ndim=(1, 2))
    Zt = v.tensor(Z, "Z", ndim=3)
    v.same_float(delta, Zt, "delta", "Z")
    v.check_size(delta, Zt.shape[-1], "delta", of=" (the patch size of Z)")
    if bool((delta.norm(dim=-1) == 0).any()):
        raise ValueError("delta must be non-zero (the share of a zero vector is undefined)")
    threshold = v.positive_float(threshold, "threshold")
    if threshold >= 1:
        raise ValueError(f"threshold must lie in (0, 1) (a fraction of the largest eigenvalue), got {threshold}")
    if w_star is None:
        values, vectors = patch_spectrum(Zt, skip_zero=skip_zero)
    else:
        values, vectors = curvature_spectrum(w_star, Zt)
    low = values <= threshold * values[0]
    coords = delta @ vectors[:, low]                                       # (…, number of low directions)
    return (coords * coords).sum(dim=-1) / (delta * delta).sum(dim=-1)


def interpolation_curve(w, w_star, Z, lambdas) -> torch.Tensor:
    """Relative loss (:func:`filterlib.model.relative_loss`, log base 10) along w_inter = λw + (1 − λ)w* (Fig. 5).

    ``lambdas`` is a number or a 1-D list of finite ratios (the paper uses λ ∈ [0, 1]; λ = 0 is w* itself, where
    RL = −inf). ``w`` (p,) gives shape (len(lambdas),); (R, p) gives (len(lambdas), R). Defined in chapters/mnist.md.
    """
    w = v.tensor(w, "w", ndim=(1, 2))
    if isinstance(lambdas, numbers.Real) and not isinstance(lambdas, bool):
        lambdas = [lambdas]
    lam = v.tensor(np.asarray(lambdas, dtype=np.float64) if not isinstance(lambdas, torch.Tensor) else lambdas,
                   "lambdas", ndim=1, dtype=w.dtype, device=w.device)
    w_star = v.vector(w_star, "w_star")
    v.same_float(w, w_star, "w", "w_star")
    v.check_size(w, w_star.shape[0], "w", of=" (the size of w_star)")
    W = w.reshape(-1, w.shape[-1])
    inter = lam[:, None, None] * W[None] + (1 - lam[:, None, None]) * w_star       # (Λ, R, p)
    rl = relative_loss(inter.reshape(-1, W.shape[-1]), w_star, Z).reshape(lam.shape[0], W.shape[0])
    return rl[:, 0] if w.dim() == 1 else rl


def relative_loss_curve(history, Z=None, *, base: float = 10.0) -> np.ndarray:
    """Relative loss of every recorded iterate of a run (Fig. 3(c)/(d)), log base ``base`` (10, or ``math.e`` for
    the natural logarithm: RL_e = ln 10 · RL_10).

    With ``Z`` (n, k, p): RL on that sample, from the iterates of a :class:`filterlib.train.History` recorded with
    ``trajectory=True`` (its teacher is ``history.w_star``), evaluated in Z's dtype in chunks (see
    :func:`filterlib.model.relative_loss`). Without ``Z``: from the monitor losses a run of
    :func:`filterlib.sgd_images` recorded, RL = log(2·loss / ȳ²) with ȳ the monitor's mean label
    (``history.meta["monitor_label_mean"]``), at no extra cost. Returns a numpy array of shape
    (len(history.step), R), or (len(history.step),) for a single filter, matching ``history.loss``. Defined in
    chapters/mnist.md.
    """
    if not isinstance(history, History):
        raise TypeError(f"history must be a filterlib History, got {type(history).__name__}")
    base = v.positive_float(base, "base")
    if base == 1:
        raise ValueError("base must not be 1")
    if Z is None:
        mean = history.meta.get("monitor_label_mean")
        if mean is None:
            raise ValueError("history has no monitor label mean (a run of filterlib.sgd_images records it); "
                             "pass a sample Z to evaluate the recorded iterates on")
        if mean == 0:
            raise ValueError("the monitor's mean label is 0, so the relative loss is undefined")
        with np.errstate(divide="ignore"):
            return (np.log(2 * history.loss) - 2 * np.log(abs(mean))) / np.log(base)
    if history.trajectory is None:
        raise ValueError("history has no trajectory: record the run with trajectory=True")
    Z = v.tensor(Z, "Z", ndim=3)
    traj = torch.as_tensor(history.trajectory, dtype=Z.dtype, device=Z.device)
    w_star = history.w_star.to(dtype=Z.dtype, device=Z.device)
    rl = relative_loss(traj.reshape(-1, traj.shape[-1]), w_star, Z)
    return rl.reshape(traj.shape[:-1]).cpu().numpy() * (np.log(10) / np.log(base))


def relative_loss_images(w, w_star, images, *, size: int = 5, stride: int = 1, chunk: int = 2000,
                         base: float = 10.0) -> torch.Tensor:
    """Relative loss (Definition B.11, log base ``base``) of filters ``w`` (p,) or (R, p) with labels from
    ``w_star`` on a stack of ``images`` (N, H, W), e.g. all 10,000 MNIST test images: the images are cut into
    patches ``chunk`` at a time (the patch tensor of all of them would not fit), and the sums of squared residuals
    and of labels are added up over the chunks (:func:`filterlib.kernel.residual_pass`), so the result equals
    :func:`filterlib.model.relative_loss` on all patches at once up to rounding. Returns a 0-d tensor for one
    filter, (R,) for R. Defined in chapters/mnist.md.
    """
    images = v.tensor(images, "images", ndim=3)
    w = v.filters(w, "w", p=v.positive_int(size, "size") ** 2, of=f" (size² = {size * size})")
    v.same_float(w, images, "w", "images")
    w_star = v.vector(w_star, "w_star", like=w, like_name="w")
    chunk, base = v.positive_int(chunk, "chunk"), v.positive_float(base, "base")
    single = w.dim() == 1
    W = w.unsqueeze(0) if single else w
    sse, label_sum = torch.zeros(W.shape[0], dtype=torch.float64, device=w.device), 0.0
    for s in range(0, images.shape[0], chunk):
        Z = patches(images[s:s + chunk], size, stride)
        part, y = kernel.residual_pass(W, w_star, Z)
        sse, label_sum = sse + part.double(), label_sum + float(y.double().sum())
    n = images.shape[0]
    if label_sum == 0:
        raise ValueError("w_star gives labels whose mean is 0, so the relative loss is undefined")
    rl = (torch.log(sse / n) - 2 * np.log(label_sum / n)) / np.log(base)
    return (rl[0] if single else rl).to(w.dtype)
