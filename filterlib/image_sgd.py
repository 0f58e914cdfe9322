"""SGD on images, R runs at once, each drawing its own minibatches: the engine of the MNIST experiment (Figures
3(c)/(d), 4 and 5) at the paper's budget, 50 epochs over 60,000 images (chapters/mnist.md).

:func:`sgd_images` trains filters of the model f(w, X) = (1/k) Σ_i relu(wᵀZ_i(X)) on whole images, with labels
from a teacher, y = f(w*, X), computed once per image. :func:`filterlib.train.sgd` does the same on a patch
tensor Z (n, k, p); for the paper's budget that tensor would hold 60,000 × 576 × 25 numbers (3.5 GB in float32),
and every SGD step would copy out a (R, B, k, p) minibatch of patches. Here no patch is ever copied.

How a step is computed. Each image is kept flat, H·W numbers. A patch position (i, j) is the flat index
t = W·(s·i) + s·j (s the stride), and entry (u, v) of its patch is pixel t + W·u + v. So the p = size²
pre-activations wᵀZ_t of *all* patch positions of a minibatch are p shifted, strided slices of the flat images,
each scaled by one filter entry and summed; positions t whose column would run past the image's right edge are
computed too and masked out. The gradient of the per-run loss ℓ_r = (1/2B) Σ_b (f(w_r, X_b) − y_b)² is

    ∇ℓ_r = (1/(kB)) Σ_b (f(w_r, X_b) − y_b) G_b,   G_b = Σ_t 1{w_rᵀZ_t ≥ 0} Z_t(X_b)   (a p-vector),

with the paper's indicator 1{· ≥ 0}, and G_b is again p masked sums of the same shifted slices. The minibatch
is gathered from the flat images by index inside the step, and the gradient sums of a step (gather, p shifted
products, mask, outputs, the p sums of G) are one function, :func:`make_gradient_sums`, that ``torch.compile``
turns into a few fused loops over data that stay in the cache. benchmarks/bench.py measures it against the
alternatives (plain tensor code, grouped conv2d with its backward, an unfolded patch tensor, the patch path of
:func:`filterlib.sgd`, and the same step compiled with OpenMP threads inside).

Threads. The compiled step spreads its loops over torch's threads (OpenMP on the CPU), with the thread count of
the moment it was compiled (part of the cache key). OpenMP threads wait for each other at the end of every loop,
so on a machine whose cores are busy with other work a step can take many times longer; there
``torch.set_num_threads(1)`` before the call is the faster choice. Python threads each running a part of the
minibatch were measured too, and ran one after the other, not side by side.

Where compilation is not available (no C++ compiler, an old torch) the same function runs eagerly, with the
same numbers up to rounding and a warning; ``compile=False`` or ``FILTERLIB_COMPILE=0`` asks for that. On a GPU
the minibatch is not split, and blocks of ``GRAPH_STEPS`` steps are captured as a CUDA graph and replayed, so
that the steps are not limited by kernel launches.
"""
from __future__ import annotations

import os
import time
import warnings
from contextlib import contextmanager

import numpy as np
import torch

from . import _validate as v
from . import config, kernel, rng
from .model import patches
from .train import History, Recorder

#: Steps whose minibatch indices are drawn at once (the same on every device, so a seed gives the same minibatches
#: on the CPU and on a GPU) and, on a GPU, the length of the captured CUDA graph's block.
DRAW_BLOCK = 512
GRAPH_STEPS = 32
#: Images per chunk of the label computation (bounds its temporaries).
EVAL_CHUNK = 1024
COMPILE_ENV = "FILTERLIB_COMPILE"

_STEPS: dict = {}                   # compiled step functions, by geometry, dtype and device
_FAILED: dict = {}                  # geometries whose compilation failed: the reason (eager from then on)


def compile_enabled() -> bool:
    """True unless ``FILTERLIB_COMPILE`` is ``0`` (or false/off/no): the default of :func:`sgd_images`'s ``compile``
    (chapters/mnist.md)."""
    return os.environ.get(COMPILE_ENV, "1").strip().lower() not in ("0", "false", "off", "no")


def geometry(height: int, width: int, size: int, stride: int) -> dict:
    """The flat-image view of a (height × width) image cut into size × size patches at ``stride``: the patch
    count k = out_h·out_w, the number ``span`` of flat positions t = 0, …, span − 1 (patch t starts at pixel
    s·t), the p offsets W·u + v of a patch's entries, and ``valid``, the positions that are patches (column
    t mod W < out_w). Patch entries are ordered row by row, as in :func:`filterlib.model.patches`. Used by
    :func:`sgd_images` (chapters/mnist.md)."""
    out_h, out_w = (height - size) // stride + 1, (width - size) // stride + 1
    span = width * (out_h - 1) + out_w
    valid = (torch.arange(span) % width) < out_w
    return {"k": out_h * out_w, "span": span, "stride": stride, "valid": valid,
            "offsets": tuple(width * u + c for u in range(size) for c in range(size))}


def make_gradient_sums(geo: dict):
    """The gradient sums of one part of the minibatches, for one geometry: (w (R, p), idx (R, b), images (N, H·W),
    labels (N,), valid (span,)) -> Σ_b (f(w_r, X_b) − y_b) G_b, shape (R, p), unnormalised (see the module's
    docstring). Plain tensor code, compiled or run eagerly, behind :func:`sgd_images` (chapters/mnist.md);
    benchmarks/bench.py times it against the alternatives."""
    offsets, span, s, k = geo["offsets"], geo["span"], geo["stride"], geo["k"]
    last = s * (span - 1) + 1

    def partial(w, idx, images, labels, valid):
        X = images[idx]                                                     # (R, b, H·W): the minibatches
        pre = None
        for j, o in enumerate(offsets):                                     # wᵀZ_t for every position t
            term = X[:, :, o:o + last:s] * w[:, j, None, None]
            pre = term if pre is None else pre + term
        f = (torch.relu(pre) * valid).sum(-1) / k                           # f(w, X_b), (R, b)
        active = (pre >= 0).to(X.dtype) * valid
        G = torch.stack([(active * X[:, :, o:o + last:s]).sum(-1) for o in offsets], -1)   # (R, b, p)
        return ((f - labels[idx]).unsqueeze(-1) * G).sum(1)
    return partial


def labels(w_star: torch.Tensor, flat: torch.Tensor, geo: dict) -> torch.Tensor:
    """Teacher outputs y = f(w*, X) of flat images (N, H·W), shape (N,): the shifted slices of a step, in chunks of
    ``EVAL_CHUNK`` images shared out to the threads (cheaper than conv2d with one output channel, and free of TF32
    on a GPU). Used by :func:`sgd_images` (chapters/mnist.md)."""
    s, last = geo["stride"], geo["stride"] * (geo["span"] - 1) + 1
    valid = geo["valid"].to(dtype=flat.dtype, device=flat.device)
    coef = w_star.tolist()

    def chunk(c):
        X = flat[c * EVAL_CHUNK:(c + 1) * EVAL_CHUNK]
        pre = torch.zeros(X.shape[0], geo["span"], dtype=flat.dtype, device=flat.device)
        for j, o in enumerate(geo["offsets"]):
            pre.add_(X[:, o:o + last:s], alpha=coef[j])
        return (torch.relu(pre) * valid).sum(-1) / geo["k"]
    count = -(-flat.shape[0] // EVAL_CHUNK)
    with torch.no_grad():
        if flat.device.type == "cpu":
            return torch.cat(parallel_map(chunk, count))
        return torch.cat([chunk(c) for c in range(count)])


class _Batches:
    """Minibatch indices of R runs, ``DRAW_BLOCK`` steps at a time: per-epoch permutations (each run walks through
    its own random permutations of the N images, one after another, so a batch may straddle two epochs) or
    uniform draws with replacement. Drawn on the generator's device, handed out on ``device``."""

    def __init__(self, n, runs, batch, parts, replacement, g, device):
        self.n, self.runs, self.batch, self.parts = n, runs, batch, parts
        self.replacement, self.g, self.device = replacement, g, device
        self.pending = torch.empty(runs, 0, dtype=torch.int64, device=g.device)

    def block(self, steps: int) -> torch.Tensor:
        need = steps * self.batch
        if self.replacement:
            idx = torch.randint(self.n, (self.runs, need), generator=self.g, device=self.g.device)
        else:
            while self.pending.shape[1] < need:
                perms = [torch.randperm(self.n, generator=self.g, device=self.g.device) for _ in range(self.runs)]
                self.pending = torch.cat([self.pending, torch.stack(perms)], dim=1)
            idx, self.pending = self.pending[:, :need], self.pending[:, need:]
        idx = idx.reshape(self.runs, steps, self.parts, self.batch // self.parts)
        return idx.permute(1, 2, 0, 3).contiguous().to(self.device)          # (steps, parts, R, b)


def _eta(eta, runs: int, like: torch.Tensor) -> torch.Tensor:
    if isinstance(eta, (list, tuple, np.ndarray, torch.Tensor)):
        t = v.tensor(eta.detach().cpu() if isinstance(eta, torch.Tensor) else eta, "eta", ndim=1,
                     dtype=torch.float64)
        if t.shape[0] != runs:
            raise ValueError(f"eta must be a positive number or one step per run, shape ({runs},), "
                             f"got shape {tuple(t.shape)}")
        if not bool((t > 0).all()):
            raise ValueError(f"eta must be positive, got {t.tolist()}")
        return t.to(dtype=like.dtype, device=like.device).unsqueeze(-1)
    return torch.full((runs, 1), v.positive_float(eta, "eta"), dtype=like.dtype, device=like.device)


def _monitor(monitor, images: torch.Tensor) -> torch.Tensor:
    if isinstance(monitor, torch.Tensor):
        m = v.tensor(monitor, "monitor", ndim=3)
        v.same_float(m, images, "monitor", "images")
        if m.shape[1:] != images.shape[1:]:
            raise ValueError(f"monitor images must have the size of the training images, {tuple(images.shape[1:])}, "
                             f"got shape {tuple(m.shape)}")
        return m
    return images[:min(images.shape[0], v.positive_int(monitor, "monitor"))]


@contextmanager
def _threads(n: int):
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def parallel_map(fn, count: int) -> list:
    """[fn(0), …, fn(count − 1)], shared out on the CPU to torch.get_num_threads() threads that each run
    single-threaded (the pool of :mod:`filterlib.kernel`: no barrier per operation, so a core busy with another
    process slows the work by its share only). Used by :func:`sgd_images` (chapters/mnist.md)."""
    out = [None] * count
    todo = iter(range(count))                                               # shared by the threads

    def work():
        for q in todo:
            out[q] = fn(q)
    threads = min(torch.get_num_threads(), count)
    jobs = [kernel.worker_pool(threads - 1).submit(work) for _ in range(threads - 1)]
    try:
        with _threads(1):
            work()
    finally:
        for job in jobs:
            job.result()
    return out


class _Stepper:
    """Runs SGD steps: compiled with an eager fallback, and on a GPU
    in blocks replayed from a CUDA graph."""

    def __init__(self, geo, key, w, eta, batch, data, want_compile, want_graph):
        self.data, self.geo = data, geo
        self.parts = 1                                                      # the minibatch in one piece
        self.scale = eta / (geo["k"] * batch)                              # (R, 1): η/(kB)
        self.fn, self.compiled, self.reason, self.graph = make_gradient_sums(geo), False, None, None
        if want_compile:
            self._compile(key, w, batch // self.parts)
        if want_graph and w.device.type == "cuda":
            self._capture(w, batch)

    def _compile(self, key, w, size):
        if key in _FAILED:
            self.reason = _FAILED[key]
            return
        try:
            fn = _STEPS.get(key) or torch.compile(make_gradient_sums(self.geo), dynamic=False, fullgraph=True)
            idx = torch.arange(w.shape[0] * size, device=w.device).remainder(self.data[0].shape[0])
            idx = idx.reshape(w.shape[0], size)
            got = fn(w, idx, *self.data)                                    # compiles now; checked below
            want = self.fn(w, idx, *self.data)
            tol = 1e-4 if w.dtype == torch.float32 else 1e-10
            if not torch.allclose(got, want, rtol=tol, atol=tol * float(want.abs().max())):
                raise RuntimeError("the compiled step disagrees with the eager one")
        except Exception as exc:  # noqa: BLE001 - any failure of the compiler: the same step, eagerly
            text = str(exc).strip()
            _FAILED[key] = self.reason = f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text \
                else type(exc).__name__
            warnings.warn(f"sgd_images: torch.compile is not available here ({self.reason}); running the step "
                          f"eagerly (same results up to rounding, slower). Set {COMPILE_ENV}=0 to skip the "
                          f"attempt.", stacklevel=4)
            return
        _STEPS[key] = self.fn = fn
        self.compiled = True

    def _one(self, w, idx):
        """One step; idx (1, R, B)."""
        return w - self.scale * self.fn(w, idx[0], *self.data)

    def _capture(self, w, batch):
        """A CUDA graph of GRAPH_STEPS steps; replayed with the next block's indices copied in."""
        try:
            self.w_in = w.clone()
            self.idx_in = torch.zeros(GRAPH_STEPS, 1, w.shape[0], batch, dtype=torch.int64, device=w.device)
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):                                          # warm-up outside the graph
                    self._one(self.w_in, self.idx_in[0])
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = self.w_in
                for s in range(GRAPH_STEPS):
                    out = self._one(out, self.idx_in[s])
            self.w_out, self.graph = out, graph
        except Exception as exc:  # noqa: BLE001 - no graph: the steps run one by one
            self.graph = None
            self.reason = (self.reason + "; " if self.reason else "") + \
                f"no CUDA graph ({type(exc).__name__}: {str(exc).strip()[:120]})"

    def run(self, w, idx):
        """w after the steps whose minibatch indices are idx (n, parts, R, b)."""
        s, n = 0, idx.shape[0]
        if self.graph is not None:
            while n - s >= GRAPH_STEPS:
                self.w_in.copy_(w)
                self.idx_in.copy_(idx[s:s + GRAPH_STEPS])
                self.graph.replay()
                w = self.w_out.clone()
                s += GRAPH_STEPS
        for j in range(s, n):
            w = self._one(w, idx[j])
        return w


def sgd_images(w0, w_star, images, *, eta, steps: int, batch_size: int = 64, filter_size: int = 5,
               stride: int = 1, seed: int | None = None, generator: torch.Generator | None = None,
               record_every: int | None = None, monitor=2048, replacement: bool = False, trajectory: bool = False,
               compile: bool | None = None, cuda_graph: bool | None = None,
               progress: bool | None = None) -> History:
    """SGD on images for R runs at once, each run drawing its own minibatches (Fig. 3(c)/(d); chapters/mnist.md).

    Model and loss: f(w, X) = (1/k) Σ_i relu(wᵀZ_i) over the k patches Z_i of image X (``filter_size`` ×
    ``filter_size``, at ``stride``, no padding, flattened row by row as in :func:`filterlib.model.patches`);
    labels y = f(``w_star``, X), computed once per image; each step of run r takes
    w_r ← w_r − η ∇ℓ_r with ℓ_r = (1/2B) Σ_b (f(w_r, X_b) − y_b)² over its own minibatch of B = ``batch_size``
    images, and the gradient uses the paper's indicator 1{wᵀZ_i ≥ 0}.

    * ``w0``: one start (p,) or R starts (R, p), p = ``filter_size``²; ``w_star`` (p,); ``images`` (N, H, W);
      all three of one float dtype, on one device (the run's).
    * ``eta``: a positive step, or one per run (a sequence of R positive numbers).
    * Minibatches: by default each run walks through its own random permutations of the N images, one
      permutation per epoch, taken B at a time; a batch may straddle two epochs, so ``steps`` = epochs·N/B
      covers exactly that many epochs when N/B is whole, and B may exceed N. ``replacement=True`` draws every
      batch uniformly with replacement instead. The indices come from ``generator``, or from a CPU generator
      seeded with ``seed``, so a seed gives the same minibatches on every device; the results then agree across
      devices up to rounding, and repeat exactly on one machine with the same number of threads.
    * Records, every ``record_every`` steps (default: about 100 records) and at the end: the loss
      ½ mean (f(w, X) − y)² on ``monitor`` (an int: the first that many training images; or a tensor of other
      images (M, H, W), e.g. the test set), ‖w − w*‖ and θ(w, w*), and the iterates with ``trajectory=True``.
      ``history.meta`` holds the settings, the monitor's mean label (for the relative loss,
      RL = log(2·loss / mean²)), whether the step was compiled, and the run time in seconds.
    * ``compile``: compile the step with ``torch.compile`` (default: yes unless ``FILTERLIB_COMPILE=0``); if
      compilation fails the step runs eagerly, with a warning. ``cuda_graph``: on a GPU, replay blocks of
      steps from a captured CUDA graph (default: yes on CUDA).

    Raises ValueError or TypeError naming the parameter for bad inputs, and FloatingPointError naming the step
    if the monitored loss becomes non-finite.
    """
    start = time.perf_counter()
    images, w, w_star, size, stride, single = _checked(w0, w_star, images, filter_size, stride)
    steps = v.nonneg_int(steps, "steps")
    batch = v.positive_int(batch_size, "batch_size")
    record_every = v.positive_int(record_every if record_every is not None else max(1, steps // 100),
                                  "record_every")
    replacement, trajectory = v.flag(replacement, "replacement"), v.flag(trajectory, "trajectory")
    want_compile = compile_enabled() if compile is None else v.flag(compile, "compile")
    want_graph = True if cuda_graph is None else v.flag(cuda_graph, "cuda_graph")
    show = config.progress_enabled() if progress is None else v.flag(progress, "progress")
    if generator is None:
        if seed is None:
            rng.resolve_generator(None, None)                               # raises: a seed or a generator
        g = rng.generator(seed, "cpu")
    else:
        g = rng.resolve_generator(generator, seed)
    (N, H, W), R = images.shape, w.shape[0]
    eta_t = _eta(eta, R, w)
    mon = _monitor(monitor, images)

    geo = geometry(H, W, size, stride)
    flat = images.reshape(N, H * W).contiguous()
    data = (flat, labels(w_star, flat, geo), geo["valid"].to(dtype=images.dtype, device=images.device))
    key = (H, W, size, stride, R, batch, images.dtype, str(images.device), torch.get_num_threads())
    stepper = _Stepper(geo, key, w, eta_t, batch, data, want_compile, want_graph)
    Z_mon = torch.cat(parallel_map(lambda c: patches(mon[c * EVAL_CHUNK:(c + 1) * EVAL_CHUNK], size, stride),
                                   -(-mon.shape[0] // EVAL_CHUNK)))                 # (M, k, p), once
    batches = _Batches(N, R, batch, stepper.parts, replacement, g, images.device)
    rec = Recorder(w_star, steps, record_every, trajectory, single)
    w = _train(w, w_star, stepper, batches, rec, Z_mon, steps, show)
    meta = {"method": "sgd_images", "steps": steps, "batch_size": batch, "n_images": N, "epochs": steps * batch / N,
            "sampling": "with replacement" if replacement else "per-epoch permutations", "filter_size": size,
            "stride": stride, "eta": eta_t[:, 0].tolist(), "monitor_size": mon.shape[0],
            "monitor_label_mean": float(kernel.residual_pass(w_star[None], w_star, Z_mon)[1].double().mean()),
            "compiled": stepper.compiled, "cuda_graph": stepper.graph is not None,
            "fallback_reason": stepper.reason, "seconds": time.perf_counter() - start}
    return rec.history(w, meta)


def _checked(w0, w_star, images, filter_size, stride):
    images = v.tensor(images, "images", ndim=3)
    H, W = images.shape[1:]
    size = v.positive_int(filter_size, "filter_size")
    if size > min(H, W):
        raise ValueError(f"filter_size must be at most the image size {H}×{W}, got {size}")
    stride = v.positive_int(stride, "stride")
    p = size * size
    w0 = v.filters(w0, "w0", p=p, of=f" (filter_size² = {p})")
    v.same_float(w0, images, "w0", "images")
    w_star = v.vector(w_star, "w_star", p=p)
    v.same_float(w_star, images, "w_star", "images")
    v.nonzero_rows(w0, "w0")
    v.nonzero_rows(w_star, "w_star")
    single = w0.dim() == 1
    w = (w0.unsqueeze(0) if single else w0).detach().clone()
    return images, w, w_star, size, stride, single


def _train(w, w_star, stepper, batches, rec, Z_mon, steps, show):
    """The loop: records (the loss ½ mean (f(w, X) − y)² on the monitor's patches) and blocks of steps."""
    def monitor_loss(w):
        return kernel.residual_pass(w, w_star, Z_mon)[0] / (2 * Z_mon.shape[0])
    bar = None
    if show:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc="SGD on images", leave=False)
    t, idx, used = 0, None, DRAW_BLOCK
    while t < steps:
        if rec.due(t):
            rec.add(t, w, monitor_loss(w))
        n = min(steps - t, rec.record_every - t % rec.record_every)         # up to the next record
        done = 0
        while done < n:
            if used == DRAW_BLOCK:
                idx, used = batches.block(DRAW_BLOCK), 0
            m = min(n - done, DRAW_BLOCK - used)
            w = stepper.run(w, idx[used:used + m])
            used, done = used + m, done + m
        t += n
        if bar is not None:
            bar.update(n)
    if bar is not None:
        bar.close()
    rec.add(steps, w, monitor_loss(w))
    if w.device.type == "cuda":
        torch.cuda.synchronize(w.device)
    return w
