"""The min/max over candidate filters that turns moments into the constants of the paper, with its error bar.

γ(φ) is a minimum over the directions at angle φ of the smallest eigenvalue of a moment, L(φ) and L_{−w*}(φ)
maxima of the largest one (Definition 3.1, Assumptions 3.2 and 4.1), the cross sum of Assumption 4.2 a sum over
T1, T2, T4 of maxima of the largest singular value, and β and L_cross maxima over a grid of angles of such a
value divided by φ. :func:`extreme` computes all of them from the batch sums of :func:`filterlib.theory.moments
.candidate_sums`, and, on request, the error bar described in :mod:`filterlib.theory.estimators` (batch means
plus a cross-fitted estimate of the selection bias).
"""
from __future__ import annotations

import math

import torch

KINDS = ("min", "max", "singular")
"""What :func:`extreme` takes per candidate and group: the min of λ_min, the max of λ_max, the max of σ_max."""


def extreme(S, counts: torch.Tensor, *, kind: str = "max", scale: torch.Tensor | None = None,
            over_grid: bool = False, return_se: bool = False):
    """The extreme over candidate filters of a spectral value of their moments, and optionally its error bar.
    Serves every estimator of chapters/smoothness.md and chapters/conv_model.md, and the diagnose command
    (chapters/diagnose.md).

    ``S`` is one stack of batch sums (B, c, m, p, p) for c groups (angles) of m candidates (directions), or a
    sequence of such stacks (the terms T1, T2, T4 of a cross sum); ``counts`` (B,) are the batch sizes. Per
    group, the value is the sum over the stacks of the extreme over the m candidates of: λ_min, minimised
    (``kind="min"``, γ), λ_max, maximised (``"max"``, L, L_{−w*}), or σ_max, maximised (``"singular"``, the
    non-symmetric cross moments), each of the mean moment over all B batches; times ``scale`` (c,) if given
    (1/φ for β and L_cross). With ``over_grid`` the value is then the extreme over the c groups (0-d); else it
    has shape (c,). Since rounding is monotone, max over (φ, direction) of λ/φ equals max over φ of
    (max over directions of λ)·(1/φ) bit for bit.

    Returns (value, None), or with ``return_se`` (value, error bar) of the same shape: sqrt(se_bm² + se_cf² +
    bias²). se_bm is the batch-means standard error (the value recomputed on each of the B disjoint batches;
    std/√B); bias is the value minus a B-fold cross-fitted estimate: for each batch b the candidate, its top
    eigenvector (or singular pair u, v) and, with ``over_grid``, the group are chosen on the other B − 1
    batches, and the Rayleigh quotient uᵀ S_b v is evaluated on the held-out batch b, which is unbiased for that
    fixed choice; se_cf is that estimate's standard error. The bias term captures the selection bias of a
    min/max over many near-optimal candidates and the O(1/n) bias of an eigenvalue of a noisy matrix.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    terms = [S] if isinstance(S, torch.Tensor) else list(S)
    pick = _picker(kind)
    n = counts.sum()
    full = _total([T.sum(0) / n for T in terms], kind, scale)                  # (c,)
    value = pick(full, 0).values if over_grid else full
    if not return_se:
        return value, None
    B = terms[0].shape[0]
    cnt = counts.reshape(B, 1, 1, 1, 1)
    per_batch = _total([T / cnt for T in terms], kind, scale)                  # (B, c)
    if over_grid:
        per_batch = pick(per_batch, -1).values
    se_bm = per_batch.std(dim=0, unbiased=True) / math.sqrt(B)
    held, train = _cross_fit(terms, counts, kind)                              # (B, c) each
    if scale is not None:
        held, train = held * scale, train * scale
    if over_grid:
        held = held[torch.arange(B, device=held.device), pick(train, -1).indices]
    crossfit = held.mean(dim=0)
    se_cf = held.std(dim=0, unbiased=True) / math.sqrt(B)
    return value, torch.sqrt(se_bm ** 2 + se_cf ** 2 + (value - crossfit) ** 2)


def _picker(kind: str):
    """min over a dimension for γ, max otherwise (returns torch's (values, indices))."""
    if kind == "min":
        return lambda t, dim: t.min(dim=dim)
    return lambda t, dim: t.max(dim=dim)


def _spectral(T: torch.Tensor, kind: str) -> torch.Tensor:
    """The spectral value of each (p, p) matrix of T (…, p, p): λ_min, λ_max or σ_max."""
    if kind == "singular":
        return torch.linalg.matrix_norm(T, ord=2)
    return torch.linalg.eigvalsh(T)[..., 0 if kind == "min" else -1]


def _accumulate(parts):
    """Σ of a list of tensors, left to right (a single term is returned as is, keeping the sign of a zero)."""
    out = parts[0]
    for part in parts[1:]:
        out = out + part
    return out


def _total(means, kind, scale):
    """Per group (and batch): Σ over the terms of the extreme over candidates of the spectral value of the mean
    moments ``means`` (…, c, m, p, p), times ``scale``."""
    pick = _picker(kind)
    out = _accumulate([pick(_spectral(T, kind), -1).values for T in means])
    return out if scale is None else out * scale


def _top(T: torch.Tensor, kind: str):
    """Per matrix of T (…, p, p): the spectral value of :func:`_spectral` and its vectors (u, v), with
    uᵀ T v = that value (u = v, the eigenvector, for the symmetric kinds). The values come from the same
    decomposition as the vectors (eigh or svd)."""
    if kind == "singular":
        U, sig, Vh = torch.linalg.svd(T)
        return sig[..., 0], U[..., :, 0], Vh[..., 0, :]
    lam, vec = torch.linalg.eigh(T)
    e = 0 if kind == "min" else -1
    return lam[..., e], vec[..., :, e], vec[..., :, e]


def _cross_fit(terms, counts, kind):
    """For each batch b and group: (Σ_j uᵀ S_j,b v on the held-out batch b, Σ_j the chosen value on the other
    batches), with the candidate and (u, v) chosen for each term j on the other B − 1 batches."""
    pick = _picker(kind)
    n = counts.sum()
    B, c = terms[0].shape[:2]
    cnt = counts.reshape(B, 1, 1, 1, 1)
    b_idx = torch.arange(B, device=counts.device)[:, None]
    c_idx = torch.arange(c, device=counts.device)[None, :]
    held, train = [], []
    for T in terms:
        values, u, v = _top((T.sum(0, keepdim=True) - T) / (n - cnt), kind)      # trained without batch b
        best = pick(values, -1)                                                   # (B, c): the chosen candidate
        rows = (b_idx, c_idx, best.indices)
        held.append(torch.einsum("bci,bcij,bcj->bc", u[rows], (T / cnt)[rows], v[rows]))
        train.append(best.values)
    return _accumulate(held), _accumulate(train)
