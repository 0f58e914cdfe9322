"""The gradient kernel of the convolutional-filter model: outputs, teacher labels, loss, closed-form gradient and
sums of squared residuals, with no input checks (the appendix page chapters/performance.md explains it).

:mod:`filterlib.model` and :mod:`filterlib.train` validate their inputs and then call these functions; the
benchmarks (benchmarks/bench.py, benchmarks/gpu_check.py) call them directly. Shapes follow
:mod:`filterlib.model`: ``w`` is one filter (p,) or R filters (R, p); a sample ``Z`` is shared, (n, k, p), or
one per run, (R, n, k, p).

The fused pass. With a shared sample Z (n, k, p) and R filters the gradient takes two contractions over all n·k
patches: the pre-activations P = Z Wᵀ, and the indicator-weighted sum Σ coef·Z with coef = 1{P ≥ 0}·(f(w, Z_n) −
y_n). Done on the whole sample they make (n·k × R) temporaries far larger than any cache (74 MB for 2000
MNIST-size images and R = 16), so every pass goes to main memory. :func:`fused_pass` walks Z in chunks of whole
examples: per chunk one GEMM gives P; the chunk's outputs f(w, Z_n) = (1/k) Σ_i relu(P_{n,i}) and residuals
follow, because the chunk holds all k patches of its examples; an in-place comparison and an in-place scaling
turn P into coef; and a second GEMM adds the chunk's share of the gradient. Z is read from memory once, P never
leaves the cache, and the result is the same sum as the plain formula, only added up in a different order.
:func:`residual_pass` is the same walk without the gradient, for the relative loss.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import torch

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
#: Bound on the pre-activations that :func:`residual_pass` holds at once for per-run samples (R, n, k, p)
#: (32 MiB in float64).
PER_RUN_CHUNK_ELEMENTS = 1 << 22


def preactivations(w: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
    """wᵀZ_i for every patch: (n, k) for one filter, (R, n, k) for R filters (shared or per-run sample).

    The plain tensor expression behind :func:`filterlib.model.forward` (chapters/gd_gaussian.md)."""
    if w.dim() == 1:
        return Z @ w
    if Z.dim() == 3:
        return torch.einsum("nkp,rp->rnk", Z, w)
    return torch.einsum("rnkp,rp->rnk", Z, w)


def outputs(w: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
    """Network outputs f(w, Z) = (1/k) Σ_i relu(wᵀZ_i), without checks: (n,) for one filter, (R, n) for R filters.

    What :func:`filterlib.model.forward` computes after validating its inputs (chapters/gd_gaussian.md)."""
    return torch.relu(preactivations(w, Z)).mean(dim=-1)


def chunk_examples(k: int, p: int, R: int, Z: torch.Tensor) -> int:
    """Examples per chunk of the fused pass for R filters on Z (…, n, k, p) (chapters/performance.md).

    Depends on the problem's size only (not on the thread count), so results are the same bit for bit whatever
    the number of threads."""
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


def worker_pool(workers: int) -> ThreadPoolExecutor:
    """The shared pool of ``workers`` single-threaded worker threads (made once, remade when the count changes):
    the fused pass here and the label and monitor chunks of :func:`filterlib.sgd_images` (chapters/performance.md)."""
    if _POOL.get("workers") != workers:
        if "pool" in _POOL:
            _POOL["pool"].shutdown(wait=False)
        _POOL.update(workers=workers, pool=ThreadPoolExecutor(workers, thread_name_prefix="filterlib",
                                                              initializer=_single_threaded))
    return _POOL["pool"]


if hasattr(os, "register_at_fork"):              # a forked child has none of the parent's threads
    os.register_at_fork(after_in_child=_POOL.clear)


class _Pass:
    """The inputs, buffers and chunking of one fused pass, shared by the threads that work on it.

    ``mode`` is "outputs" (f only), "gradient" (sums of squared residuals against ``f_star`` and the gradient) or
    "residuals" (sums of squared residuals against the teacher ``w_star``, and its labels; W then holds the
    differences w − w_star, see :func:`residual_pass`)."""

    def __init__(self, W: torch.Tensor, Z: torch.Tensor, f_star: torch.Tensor | None, mode: str,
                 w_star: torch.Tensor | None = None):
        self.n, self.k, self.p = Z.shape
        self.R = W.shape[0]
        self.mode = mode
        self.rows = self.R >= ROW_LAYOUT_MIN_R
        self.Z = Z.detach().contiguous()
        self.W = W.detach().contiguous()
        self.Wt = self.W.t().contiguous()                                   # (p, R)
        self.f_star = None if f_star is None else f_star.detach()
        self.w_star = None if w_star is None else w_star.detach().contiguous()
        self.chunk = chunk_examples(self.k, self.p, self.R, self.Z)
        self.starts = range(0, self.n, self.chunk)
        Z, R, p, count = self.Z, self.R, self.p, len(self.starts)
        self.out = Z.new_empty(self.n) if mode == "residuals" else (Z.new_empty(self.n, R) if self.rows
                                                                     else Z.new_empty(R, self.n))
        self.slots = (Z.new_empty(count, *((p, R) if self.rows else (R, p)))  # per chunk
                      if mode == "gradient" else None)
        self.sse = None if mode == "outputs" else Z.new_empty(count, R)
        self.todo = iter(range(count))                                      # shared by the workers

    def work(self) -> None:
        """Take chunks until none is left (run by every thread of the pass)."""
        size = self.chunk * self.k * self.R
        pre_buf, relu_buf = self.Z.new_empty(size), self.Z.new_empty(size)
        with torch.no_grad():
            for c in self.todo:
                if self.mode == "residuals":
                    self.chunk_residuals(c, pre_buf, relu_buf)
                    continue
                pre, f, Zc, s, m = self.chunk_outputs(c, pre_buf, relu_buf)
                if self.mode == "gradient":
                    self.chunk_gradient(c, pre, f, Zc, s, m)

    def chunk_outputs(self, c: int, pre_buf: torch.Tensor, relu_buf: torch.Tensor):
        """GEMM 1 and the outputs f(w, Z_n) of chunk ``c``, written into ``self.out``."""
        k, p, R = self.k, self.p, self.R
        s = self.starts[c]
        m = min(self.chunk, self.n - s)
        Zc = self.Z[s:s + m].view(m * k, p)                                 # whole examples, contiguous
        if self.rows:                                                       # P as (m·k, R)
            pre = torch.mm(Zc, self.Wt, out=pre_buf[:m * k * R].view(m * k, R))             # GEMM 1: wᵀZ_i
            relu = torch.clamp_min(pre, 0, out=relu_buf[:m * k * R].view(m * k, R)).view(m, k, R)
            f = self.out[s:s + m]
            torch.sum(relu, dim=1, out=f)
        else:                                                               # P as (R, m·k)
            pre = torch.mm(self.W, Zc.t(), out=pre_buf[:m * k * R].view(R, m * k))         # GEMM 1: wᵀZ_i
            relu = torch.clamp_min(pre, 0, out=relu_buf[:m * k * R].view(R, m * k)).view(R, m, k)
            f = self.out[:, s:s + m]
            torch.sum(relu, dim=2, out=f)
        f.div_(k)                                                           # f(w, Z_n) for the chunk
        return pre, f, Zc, s, m

    def chunk_gradient(self, c, pre, f, Zc, s, m) -> None:
        """Residuals, their squares' sum and GEMM 2 of chunk ``c`` (overwrites ``pre`` and ``f``)."""
        k, R = self.k, self.R
        torch.ge(pre, 0, out=pre)                                           # in place: 1.0 where wᵀZ_i ≥ 0
        if self.rows:
            f.sub_(self.f_star[s:s + m, None])                              # now the residual f − y
            torch.sum(f * f, dim=0, out=self.sse[c])
            pre.view(m, k, R).mul_(f.unsqueeze(1))                          # in place: coef
            torch.mm(Zc.t(), pre, out=self.slots[c])                        # GEMM 2: Σ coef·Z_i, (p, R)
        else:
            f.sub_(self.f_star[None, s:s + m])
            torch.sum(f * f, dim=1, out=self.sse[c])
            pre.view(R, m, k).mul_(f.unsqueeze(2))
            torch.mm(pre, Zc, out=self.slots[c])                            # GEMM 2: (R, p)

    def chunk_residuals(self, c: int, pre_buf: torch.Tensor, relu_buf: torch.Tensor) -> None:
        """Residuals of chunk ``c`` against the teacher, patch by patch: (1/k) Σ_i relu(w*ᵀZ_i + dᵀZ_i) −
        relu(w*ᵀZ_i), with d = w − w* the rows of W; their squares' sum, and the chunk's labels."""
        k, p, R = self.k, self.p, self.R
        s = self.starts[c]
        m = min(self.chunk, self.n - s)
        Zc = self.Z[s:s + m].view(m * k, p)
        teacher = torch.mv(Zc, self.w_star)                                 # w*ᵀZ_i, (m·k,)
        active = teacher.clamp_min(0)
        torch.sum(active.view(m, k), dim=1, out=self.out[s:s + m]).div_(k)  # labels f(w*, Z_n)
        if self.rows:                                                       # (m·k, R)
            diff = torch.mm(Zc, self.Wt, out=pre_buf[:m * k * R].view(m * k, R))            # dᵀZ_i
            diff.add_(teacher[:, None]).clamp_min_(0).sub_(active[:, None])
            resid = torch.sum(diff.view(m, k, R), dim=1, out=relu_buf[:m * R].view(m, R)).div_(k)
            torch.sum(resid * resid, dim=0, out=self.sse[c])
        else:                                                               # (R, m·k)
            diff = torch.mm(self.W, Zc.t(), out=pre_buf[:m * k * R].view(R, m * k))
            diff.add_(teacher[None, :]).clamp_min_(0).sub_(active[None, :])
            resid = torch.sum(diff.view(R, m, k), dim=2, out=relu_buf[:R * m].view(R, m)).div_(k)
            torch.sum(resid * resid, dim=1, out=self.sse[c])

    def run(self) -> None:
        """Share the chunks out to the threads (on the CPU), or work through them here (CUDA, one thread)."""
        threads = torch.get_num_threads()
        if self.Z.is_cuda or threads == 1 or len(self.starts) == 1:
            self.work()
            return
        jobs = [worker_pool(threads - 1).submit(self.work) for _ in range(min(threads, len(self.starts)) - 1)]
        try:
            torch.set_num_threads(1)             # the calling thread works too, on chunks the others did not take
            self.work()
        finally:
            for job in jobs:
                job.result()
            torch.set_num_threads(threads)       # (the workers' set-up also changed the default for new threads)


def fused_pass(W: torch.Tensor, Z: torch.Tensor, f_star: torch.Tensor | None = None):
    """One fused pass over a shared sample Z (n, k, p) for R filters W (R, p) (chapters/performance.md).

    Returns ``(f, None)`` with the outputs f (n, R) when ``f_star`` is None, else ``(sse, grad)`` with the
    sums of squared residuals Σ_n (f − y)², shape (R,), and the unnormalised gradient
    Σ_{n,i} 1{W_rᵀZ_{n,i} ≥ 0} (f − y)_{n,r} Z_{n,i}, shape (R, p). The outputs are computed with the same
    operations in both cases, so labels made by this function match f(w, Z) bit for bit when w = w_star.
    Everything of the size of the sample is done chunk by chunk, inside the workers.

    With fewer than ``ROW_LAYOUT_MIN_R`` filters the pre-activations are kept as (R, chunk·k) instead of
    (chunk·k, R): MKL's products with a thin side of 2–12 are several times slower in the first layout.
    """
    job = _Pass(W, Z, f_star, "outputs" if f_star is None else "gradient")
    job.run()
    if f_star is None:
        return (job.out if job.rows else job.out.t()), None
    return job.sse.sum(dim=0), (job.slots.sum(dim=0).t() if job.rows else job.slots.sum(dim=0))


def residual_pass(W: torch.Tensor, w_star: torch.Tensor, Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums of squared residuals Σ_n (f(w_r, Z_n) − f(w_star, Z_n))², shape (R,), and the labels f(w_star, Z),
    for R filters W (R, p): the residual-only mode of the fused pass (no gradient), behind the relative loss of
    chapters/mnist.md (:func:`filterlib.model.relative_loss`).

    Each residual is summed patch by patch, f(w, Z_n) − f(w*, Z_n) = (1/k) Σ_i [relu(w*ᵀZ_i + (w − w*)ᵀZ_i) −
    relu(w*ᵀZ_i)], with one GEMM for the (w − w*)ᵀZ_i. A filter equal to w_star has w − w* = 0, so every term is
    exactly 0 and so is its residual, whatever the rounding of the products (a matrix product does not round
    every row alike: the teacher as one more row of W would not do). Otherwise the result equals the plain
    formula's up to rounding. A shared sample Z (n, k, p) goes through the chunked, threaded pass (labels (n,));
    per-run samples Z (R, n, k, p) use the same expressions on whole tensors, chunked over n so that at most
    ``PER_RUN_CHUNK_ELEMENTS`` pre-activations are held at once (labels (R, n)).
    """
    diff = W - w_star
    if Z.dim() == 3:
        job = _Pass(diff, Z, None, "residuals", w_star=w_star)
        job.run()
        return job.sse.sum(dim=0), job.out
    R, n, k, _ = Z.shape
    chunk = max(1, PER_RUN_CHUNK_ELEMENTS // (R * k))
    sse, labels_ = torch.zeros(R, dtype=Z.dtype, device=Z.device), []
    with torch.no_grad():
        for s in range(0, n, chunk):
            Zc = Z[:, s:s + chunk].detach()                                 # (R, m, k, p)
            teacher = Zc @ w_star                                           # (R, m, k)
            active = teacher.clamp_min(0)
            resid = (torch.relu(teacher + preactivations(diff, Zc)) - active).mean(dim=-1)   # (R, m)
            sse = sse + (resid * resid).sum(dim=-1)
            labels_.append(active.mean(dim=-1))
    return sse, torch.cat(labels_, dim=-1)


def labels(w_star: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
    """Teacher outputs y = f(w_star, Z), computed the way :func:`loss_and_gradient` computes f(w, Z).

    Both go through the same arithmetic, so the gradient at w = w_star (one filter) is exactly 0. Used by
    :func:`filterlib.train.gradient_descent` and :func:`filterlib.train.sgd` (chapters/gd_gaussian.md,
    chapters/sgd.md) and by benchmarks/bench.py (chapters/performance.md).
    """
    if Z.dim() == 3:
        return fused_pass(w_star.unsqueeze(0), Z, None)[0][:, 0]
    return outputs(w_star, Z)


def loss_and_gradient(w, Z, f_star, *, need_gradient=True):
    """Loss and closed-form gradient, given the teacher outputs ``f_star`` (from :func:`labels`); no checks.

    The gradient is (1/n) Σ_n (f(w, Z_n) − y_n) (1/k) Σ_i Z_{n,i} 1{wᵀZ_{n,i} ≥ 0}, with the indicator
    ``≥ 0`` as in the paper's activation regions (Section 3) and Z_w (Section 4); autograd would use relu'(0) = 0, which
    differs only on a set of measure zero. A shared sample (n, k, p) goes through :func:`fused_pass` (one read
    of Z from memory, no temporaries larger than a chunk); per-run samples (R, n, k, p), the small minibatches
    of SGD, use plain tensor expressions. With ``need_gradient=False`` only the loss is computed, from the
    pre-activations (differentiable by autograd, which the tests use as the reference). Every training loop of
    :mod:`filterlib.train` calls it (chapters/gd_gaussian.md; the kernel: chapters/performance.md).
    """
    if need_gradient and Z.dim() == 3:
        n, k = Z.shape[0], Z.shape[1]
        single = w.dim() == 1
        sse, grad = fused_pass(w.unsqueeze(0) if single else w, Z, f_star)
        loss, grad = sse / (2 * n), grad / (k * n)
        return (loss[0], grad[0]) if single else (loss, grad)
    pre = preactivations(w, Z)
    k, n = Z.shape[-2], Z.shape[-3]
    resid = torch.relu(pre).mean(dim=-1) - f_star
    loss = 0.5 * (resid * resid).mean(dim=-1)
    if not need_gradient:
        return loss, None
    coef = (pre >= 0).to(Z.dtype) * (resid / (k * n)).unsqueeze(-1)
    grad = torch.einsum("rnk,rnkp->rp", coef, Z)
    return loss, grad
