"""The convolutional-filter model of Du, Lee & Tian (2018), §1 of the book (chapters/intro.md).

A sample holds ``k`` patches of size ``p``: ``Z`` has shape ``(n, k, p)``. The network is one filter ``w``
followed by ReLU and average pooling,

    f(w, Z) = (1/k) Σ_i relu(wᵀ Z_i),

the labels come from a teacher filter ``w_star`` and the loss is ``½ mean_n (f(w, Z) − f(w_star, Z))²``.
With ``k = 1`` this is the one-neuron model of Theorem 3.1.

Every function takes either one filter ``w`` of shape ``(p,)`` or ``R`` filters at once, ``(R, p)``. A batch of
filters may share one sample ``Z`` of shape ``(n, k, p)`` or have a sample each, ``(R, n, k, p)`` (used by SGD,
where every run draws its own minibatch).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

from . import _validate as v


def _check_pair(w, Z, *, w_name="w"):
    """Validate a filter (or batch of filters) against a sample; return tensors on Z's device and dtype."""
    Z = v.tensor(Z, "Z", ndim=(3, 4))
    w = v.tensor(w, w_name, ndim=(1, 2))
    v.same_float(w, Z, w_name, "Z")
    p = Z.shape[-1]
    if w.shape[-1] != p:
        raise ValueError(f"{w_name} must have size p={p} in its last dimension (the patch size of Z), "
                         f"got shape {tuple(w.shape)}")
    if Z.dim() == 4:
        if w.dim() != 2 or w.shape[0] != Z.shape[0]:
            raise ValueError(f"a per-run sample Z of shape (R, n, k, p) = {tuple(Z.shape)} needs {w_name} of shape "
                             f"(R, p) = ({Z.shape[0]}, {p}), got {tuple(w.shape)}")
    return w, Z


def _preactivations(w: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
    """wᵀZ_i for every patch: (n, k) for one filter, (R, n, k) for R filters."""
    if w.dim() == 1:
        return Z @ w
    if Z.dim() == 3:
        return torch.einsum("nkp,rp->rnk", Z, w)
    return torch.einsum("rnkp,rp->rnk", Z, w)


def _forward(w, Z):
    return torch.relu(_preactivations(w, Z)).mean(dim=-1)


def forward(w, Z) -> torch.Tensor:
    """Network output f(w, Z) = (1/k) Σ_i relu(wᵀZ_i): shape (n,) for ``w`` of shape (p,), (R, n) for (R, p)."""
    w, Z = _check_pair(w, Z)
    return _forward(w, Z)


def _check_teacher(w_star, Z):
    w_star = v.tensor(w_star, "w_star", ndim=1)
    v.same_float(w_star, Z, "w_star", "Z")
    if w_star.shape[0] != Z.shape[-1]:
        raise ValueError(f"w_star must have shape (p,) = ({Z.shape[-1]},), got {tuple(w_star.shape)}")
    return w_star


# The fused kernel of the closed-form gradient (issue 7; the appendix page chapters/performance.md).
# With a shared sample Z (n, k, p) and R filters the gradient takes two contractions over all n·k patches: the
# pre-activations P = Z Wᵀ, and the indicator-weighted sum Σ coef·Z with coef = 1{P ≥ 0}·(f(w, Z_n) − y_n).
# Done on the whole sample they make (n·k × R) temporaries far larger than any cache (74 MB for 2000 MNIST-size
# images and R = 16), so every pass goes to main memory. The kernel below walks Z in chunks of whole examples:
# per chunk one GEMM gives P; the chunk's outputs f(w, Z_n) = (1/k) Σ_i relu(P_{n,i}) and residuals follow,
# because the chunk holds all k patches of its examples; an in-place comparison and an in-place scaling turn
# P into coef; and a second GEMM adds the chunk's share of the gradient. Z is read from memory once, P never
# leaves the cache, and the result is the same sum as before, only added up in a different order.

#: Bytes of one chunk's working set on the CPU: its patches and its (chunk·k × R) pre-activations. A few MiB
#: keeps both in the cache between the two GEMMs (the book's machine: 1 MiB L2 per core, 32 MiB L3);
#: benchmarks/bench.py sweeps this value.
CHUNK_BYTES = 4 * 2**20
#: Chunks are made smaller, down to this size, so that a sample has at least ``MIN_CHUNKS`` of them to share out.
MIN_CHUNK_BYTES, MIN_CHUNKS = 256 * 2**10, 8
#: The chunk bound on CUDA, where few large kernels are best: it only caps the temporaries' memory.
CUDA_CHUNK_BYTES = 512 * 2**20
#: From this many filters on, the pre-activations are laid out (chunk·k, R), below it (R, chunk·k).
ROW_LAYOUT_MIN_R = 16


def _chunk_examples(k: int, p: int, R: int, Z: torch.Tensor) -> int:
    """Examples per chunk of the fused kernel. Depends on the problem's size only (not on the thread count), so
    results are the same bit for bit whatever the number of threads."""
    n, per_example = Z.shape[-3], k * (p + R) * Z.element_size()
    if Z.is_cuda:
        return max(1, min(n, CUDA_CHUNK_BYTES // per_example))
    chunks = max(-(-n * per_example // CHUNK_BYTES), min(MIN_CHUNKS, n * per_example // MIN_CHUNK_BYTES))
    return max(1, -(-n // max(1, chunks)))


# On the CPU the chunks are shared out to torch.get_num_threads() worker threads, each running its chunks'
# operations single-threaded, instead of running every small operation on all threads: no barrier per operation,
# so a busy core (another process) slows the kernel down by its share only. Each chunk's part of the gradient
# goes to its own slot and the slots are added in chunk order, so the result does not depend on the scheduling.
_POOL: dict = {}


def _single_threaded() -> None:
    torch.set_num_threads(1)                     # thread-local in effect: this worker's OpenMP and MKL calls


def _pool(workers: int) -> ThreadPoolExecutor:
    if _POOL.get("workers") != workers:
        if "pool" in _POOL:
            _POOL["pool"].shutdown(wait=False)
        _POOL.update(workers=workers, pool=ThreadPoolExecutor(workers, thread_name_prefix="filterlib",
                                                              initializer=_single_threaded))
    return _POOL["pool"]


if hasattr(os, "register_at_fork"):              # a forked child has none of the parent's threads
    os.register_at_fork(after_in_child=_POOL.clear)


def _fused_pass(W: torch.Tensor, Z: torch.Tensor, f_star: torch.Tensor | None):
    """One fused pass over a shared sample Z (n, k, p) for R filters W (R, p).

    Returns ``(f, None)`` with the outputs f (n, R) when ``f_star`` is None, else ``(sse, grad)`` with the
    sums of squared residuals Σ_n (f − y)², shape (R,), and the unnormalised gradient
    Σ_{n,i} 1{W_rᵀZ_{n,i} ≥ 0} (f − y)_{n,r} Z_{n,i}, shape (R, p). The outputs are computed with the same
    operations in both cases, so labels made by this function match f(w, Z) bit for bit when w = w_star.
    Everything of the size of the sample is done chunk by chunk, inside the workers.

    With fewer than ``ROW_LAYOUT_MIN_R`` filters the pre-activations are kept as (R, chunk·k) instead of
    (chunk·k, R): MKL's products with a thin side of 2–12 are several times slower in the first layout.
    """
    n, k, p = Z.shape
    R = W.shape[0]
    rows = R >= ROW_LAYOUT_MIN_R
    Z = Z.detach().contiguous()
    W = W.detach().contiguous()
    Wt = W.t().contiguous()                                                  # (p, R)
    f_star = None if f_star is None else f_star.detach()
    chunk = _chunk_examples(k, p, R, Z)
    starts = range(0, n, chunk)
    out = Z.new_empty(n, R) if rows else Z.new_empty(R, n)
    slots = None if f_star is None else Z.new_empty(len(starts), *((p, R) if rows else (R, p)))  # per chunk
    sse = None if f_star is None else Z.new_empty(len(starts), R)
    todo = iter(range(len(starts)))                                          # shared by the workers

    def work():
        pre_buf, relu_buf = Z.new_empty(chunk * k * R), Z.new_empty(chunk * k * R)
        with torch.no_grad():
            for c in todo:
                s = starts[c]
                m = min(chunk, n - s)
                Zc = Z[s:s + m].view(m * k, p)                               # whole examples, contiguous
                if rows:                                                     # P as (m·k, R)
                    pre = torch.mm(Zc, Wt, out=pre_buf[:m * k * R].view(m * k, R))          # GEMM 1: wᵀZ_i
                    relu = torch.clamp_min(pre, 0, out=relu_buf[:m * k * R].view(m * k, R)).view(m, k, R)
                    f = out[s:s + m]
                    torch.sum(relu, dim=1, out=f)
                else:                                                        # P as (R, m·k)
                    pre = torch.mm(W, Zc.t(), out=pre_buf[:m * k * R].view(R, m * k))      # GEMM 1: wᵀZ_i
                    relu = torch.clamp_min(pre, 0, out=relu_buf[:m * k * R].view(R, m * k)).view(R, m, k)
                    f = out[:, s:s + m]
                    torch.sum(relu, dim=2, out=f)
                f.div_(k)                                                    # f(w, Z_n) for the chunk
                if slots is None:
                    continue
                torch.ge(pre, 0, out=pre)                                    # in place: 1.0 where wᵀZ_i ≥ 0
                if rows:
                    f.sub_(f_star[s:s + m, None])                            # now the residual f − y
                    torch.sum(f * f, dim=0, out=sse[c])
                    pre.view(m, k, R).mul_(f.unsqueeze(1))                   # in place: coef
                    torch.mm(Zc.t(), pre, out=slots[c])                      # GEMM 2: Σ coef·Z_i, (p, R)
                else:
                    f.sub_(f_star[None, s:s + m])
                    torch.sum(f * f, dim=1, out=sse[c])
                    pre.view(R, m, k).mul_(f.unsqueeze(2))
                    torch.mm(pre, Zc, out=slots[c])                          # GEMM 2: (R, p)

    threads = torch.get_num_threads()
    if Z.is_cuda or threads == 1 or len(starts) == 1:
        work()
    else:
        jobs = [_pool(threads - 1).submit(work) for _ in range(min(threads, len(starts)) - 1)]
        try:
            torch.set_num_threads(1)             # the calling thread works too, on chunks the others did not take
            work()
        finally:
            for job in jobs:
                job.result()
            torch.set_num_threads(threads)       # (the workers' set-up also changed the default for new threads)
    if slots is None:
        return (out if rows else out.t()), None
    return sse.sum(dim=0), (slots.sum(dim=0).t() if rows else slots.sum(dim=0))


def _labels(w_star: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
    """Teacher outputs y = f(w_star, Z), computed the way :func:`_loss_and_gradient` computes f(w, Z).

    Both go through the same arithmetic, so the gradient at w = w_star (one filter) is exactly 0.
    """
    if Z.dim() == 3:
        return _fused_pass(w_star.unsqueeze(0), Z, None)[0][:, 0]
    return _forward(w_star, Z)


def _loss_and_gradient(w, Z, f_star, *, need_gradient=True):
    """Loss and closed-form gradient, given the teacher outputs ``f_star`` (from :func:`_labels`).

    The gradient is (1/n) Σ_n (f(w, Z_n) − y_n) (1/k) Σ_i Z_{n,i} 1{wᵀZ_{n,i} ≥ 0}, with the indicator
    ``≥ 0`` as in the paper (SPEC §1.2–1.3); autograd would use relu'(0) = 0, which differs only on a
    set of measure zero. A shared sample (n, k, p) goes through the fused, chunked kernel above (one read of
    Z from memory, no temporaries larger than a chunk); per-run samples (R, n, k, p), the small minibatches of
    SGD, use plain tensor expressions. With ``need_gradient=False`` only the loss is computed, from the
    pre-activations (differentiable by autograd, which the tests use as the reference).
    """
    if need_gradient and Z.dim() == 3:
        n, k = Z.shape[0], Z.shape[1]
        single = w.dim() == 1
        sse, grad = _fused_pass(w.unsqueeze(0) if single else w, Z, f_star)
        loss, grad = sse / (2 * n), grad / (k * n)
        return (loss[0], grad[0]) if single else (loss, grad)
    pre = _preactivations(w, Z)
    k, n = Z.shape[-2], Z.shape[-3]
    resid = torch.relu(pre).mean(dim=-1) - f_star
    loss = 0.5 * (resid * resid).mean(dim=-1)
    if not need_gradient:
        return loss, None
    coef = (pre >= 0).to(Z.dtype) * (resid / (k * n)).unsqueeze(-1)
    grad = torch.einsum("rnk,rnkp->rp", coef, Z)
    return loss, grad


def loss(w, w_star, Z) -> torch.Tensor:
    """ℓ(w) = ½ mean_n (f(w, Z_n) − f(w_star, Z_n))²: a scalar for one filter, shape (R,) for R filters."""
    w, Z = _check_pair(w, Z)
    w_star = _check_teacher(w_star, Z)
    return _loss_and_gradient(w, Z, _forward(w_star, Z), need_gradient=False)[0]


def gradient(w, w_star, Z) -> torch.Tensor:
    """Closed-form gradient of :func:`loss` (no autograd): shape (p,) for one filter, (R, p) for R filters.

    Serves Theorems 3.1–4.2 (chapters on gradient descent): it is the empirical version of
    ∇ℓ(w) = E[Z_w Z_wᵀ] w − E[Z_w Z_{w*}ᵀ] w*, with Z_v = (1/k) Σ_i Z_i 1{vᵀZ_i ≥ 0}.
    """
    w, Z = _check_pair(w, Z)
    w_star = _check_teacher(w_star, Z)
    return _loss_and_gradient(w, Z, _labels(w_star, Z))[1]


def angle(w, w_star) -> torch.Tensor:
    """θ(w, w_star) in radians, in [0, π]: a scalar for ``w`` of shape (p,), shape (R,) for (R, p)."""
    w = v.tensor(w, "w", ndim=(1, 2))
    w_star = v.tensor(w_star, "w_star", ndim=1)
    v.same_float(w, w_star, "w", "w_star")
    if w.shape[-1] != w_star.shape[0]:
        raise ValueError(f"w must have size p={w_star.shape[0]} in its last dimension, got shape {tuple(w.shape)}")
    v.nonzero_rows(w, "w")
    v.nonzero_rows(w_star, "w_star")
    return unit_angle(w, w_star)


def unit_angle(w: torch.Tensor, w_star: torch.Tensor) -> torch.Tensor:
    """θ = 2·atan2(‖u − s‖, ‖u + s‖) with u, s the unit vectors of w (per row) and w_star: accurate near 0 and π
    and free of the under/overflow of (w·w*)/(‖w‖‖w*‖) for tiny or huge vectors. No checks (callers validate);
    a zero row gives NaN."""
    u = w / w.norm(dim=-1, keepdim=True)
    s = w_star / w_star.norm()
    return 2 * torch.atan2((u - s).norm(dim=-1), (u + s).norm(dim=-1))


def patches(images, size, stride=1) -> torch.Tensor:
    """Cut images of shape (N, H, W) into patches: returns Z of shape (N, k, p) with p = size_h·size_w.

    ``size`` and ``stride`` are ints or (height, width) pairs; no padding. Patches are flattened row by row,
    so ``forward(w, patches(x, K))`` equals ``relu(conv2d(x, w.view(K, K))).mean()`` (a cross-correlation).
    """
    images = v.tensor(images, "images", ndim=3)
    size = _pair(size, "size")
    stride = _pair(stride, "stride")
    H, W = images.shape[1:]
    if size[0] > H or size[1] > W:
        raise ValueError(f"size {size} is larger than the images, which are {H}×{W}")
    cols = F.unfold(images.unsqueeze(1), kernel_size=size, stride=stride)  # (N, p, k)
    return cols.transpose(1, 2).contiguous()


def _pair(x, name):
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            raise ValueError(f"{name} must be an int or a pair (height, width), got {x!r}")
        return (v.positive_int(x[0], name), v.positive_int(x[1], name))
    x = v.positive_int(x, name)
    return (x, x)


_RL_CHUNK_ELEMENTS = 1 << 22  # bound on the pre-activations held at once by relative_loss (16 MiB in float32)


def relative_loss(w, w_star, Z) -> torch.Tensor:
    """Relative loss RL(w) = log10( mean_n (f(w, Z_n) − y_n)² / (mean_n y_n)² ) with labels y_n = f(w_star, Z_n).

    Serves Fig. 3(c)/(d) and Fig. 5 (chapters/mnist.md): the paper's "logarithm of squared error divided by the
    square of mean of data points" (SPEC §3.3). The logarithm is **base 10** and the error is the plain mean
    squared error, without the ½ of :func:`loss`, so RL(w) = log10(2·ℓ(w) / ȳ²). Since f is positively
    homogeneous, RL(c·w, c·w_star) = RL(w, w_star) for every c > 0.

    Shapes as for :func:`loss`: a scalar for ``w`` of shape (p,), shape (R,) for (R, p) sharing Z (n, k, p) or
    with per-run samples (R, n, k, p). An exact fit gives −inf (log10 of 0), never NaN (in a batch, w = w* may
    give a rounding-level value instead, about −30 in float64 and −13 in float32). Raises ValueError naming
    ``w_star`` when the mean label is 0 (the teacher is inactive on every patch, e.g. w_star ≤ 0 entrywise on
    non-negative images), where RL is undefined. Computed in chunks over n, so many filters on many patches fit
    in memory.
    """
    w, Z = _check_pair(w, Z)
    w_star = _check_teacher(w_star, Z)
    y = _forward(w_star, Z)                                                # (n,) or (R, n)
    y_bar = y.mean(dim=-1)
    if bool((y_bar == 0).any()):
        raise ValueError("w_star gives labels y = f(w_star, Z) whose mean is 0 (w_starᵀZ_i ≤ 0 for every patch), "
                         "so the relative loss, which divides by the squared mean label, is undefined; "
                         "use a teacher w_star that is active on some patches")
    n, k = Z.shape[-3], Z.shape[-2]
    runs = w.shape[0] if w.dim() == 2 else 1
    chunk = max(1, _RL_CHUNK_ELEMENTS // (runs * k))
    sse = torch.zeros(w.shape[:-1], dtype=Z.dtype, device=Z.device)
    for start in range(0, n, chunk):
        length = min(chunk, n - start)
        resid = _forward(w, Z.narrow(-3, start, length)) - y.narrow(-1, start, length)
        sse = sse + (resid * resid).sum(dim=-1)
    return torch.log10(sse / n) - 2 * torch.log10(y_bar)     # not log10(mse/ȳ²): ȳ² may underflow to 0
