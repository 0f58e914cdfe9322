"""Gradient descent and SGD over R runs at once, recording a :class:`History` (chapters/gd_gaussian.md onwards).

Data flows one way: a sample (or a sampler) goes in, a :class:`History` comes out, and plots or widgets read
the history. Runs are batched: ``w0`` of shape (R, p) trains R filters in one tensor computation.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np
import torch

from . import _validate as v
from . import config, rng
from . import kernel
from .model import norm, unit_angle, validate

StepSize = Union[float, Callable[..., float]]

#: On a GPU, :func:`sgd` draws the minibatches of as many steps at once as fit in this many numbers.
DRAW_BLOCK_ELEMENTS = 1 << 22


@dataclass
class History:
    """What a training run recorded, as numpy arrays on the CPU (one column per run).

    ``step`` holds the recorded step numbers (0 = the initial point); ``loss``, ``distance`` (‖w − w*‖)
    and ``angle`` (θ(w, w*) in radians, NaN where w = 0) have shape (len(step), R), or (len(step),) when a
    single filter of shape (p,) was trained. ``w`` is the final filter (a torch tensor on the run's device);
    ``trajectory`` holds the iterates at the recorded steps when asked for, shape (len(step), R, p).
    Defined in chapters/gd_gaussian.md; every chapter that trains reads one.
    """

    step: np.ndarray
    loss: np.ndarray
    distance: np.ndarray
    angle: np.ndarray
    w: torch.Tensor
    w_star: torch.Tensor
    trajectory: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def relative_distance(self) -> np.ndarray:
        """‖w − w*‖ / ‖w*‖ at each recorded step (plotted from chapters/gd_gaussian.md on)."""
        return self.distance / float(norm(self.w_star))

    def steps_to(self, eps: float) -> np.ndarray:
        """First recorded step at which ‖w − w*‖ ≤ eps·‖w*‖, per run (``np.inf`` where it never happens).

        Used in chapters/rate.md and chapters/sgd.md."""
        eps = v.positive_float(eps, "eps")
        reached = self.relative_distance.reshape(len(self.step), -1) <= eps
        first = np.where(reached.any(axis=0), self.step[reached.argmax(axis=0)].astype(float), np.inf)
        return first[0] if self.relative_distance.ndim == 1 else first


def _step_rule(eta: StepSize):
    """Turn ``eta`` into a function (t, w) -> step, a float or one positive step per run (shape (R, 1))."""
    if not callable(eta):
        value = v.positive_float(eta, "eta")
        return lambda t, w: value
    try:
        wants_w = len(inspect.signature(eta).parameters) >= 2
    except (TypeError, ValueError):
        wants_w = False

    def rule(t, w):
        value = eta(t, w) if wants_w else eta(t)
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            if value.shape != (w.shape[0],):
                raise ValueError(f"eta(t, w) must return a number or one step per run, shape ({w.shape[0]},), "
                                 f"got shape {tuple(value.shape)} at step {t}")
            if not bool(torch.isfinite(value).all() and (value > 0).all()):
                raise ValueError(f"eta must be positive and finite, got {value.tolist()} at step {t}")
            return value.to(w.dtype).unsqueeze(-1)
        try:
            return v.positive_float(float(value) if isinstance(value, torch.Tensor) else value, "eta")
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{exc} (at step {t})") from None
    return rule


def adaptive_step(step_of_phi: Callable, w_star) -> Callable:
    """The oracle step rule η_t = step_of_phi(φ_t), φ_t = arcsin(min(1, ‖w_t − w*‖/‖w*‖)), one step per run.

    Defined in chapters/rate.md, for the remark after Theorem 3.2: the allowed step grows as
    the iterate approaches w*. ``step_of_phi`` maps an array of angles to an array of steps. It needs w*, so it
    is a diagnostic, not a practical method.
    """
    if not callable(step_of_phi):
        raise TypeError("step_of_phi must be a function of the angle φ")
    w_star = v.tensor(w_star, "w_star", ndim=1)
    v.nonzero_rows(w_star, "w_star")

    def rule(t, w):
        ratio = ((w - w_star.to(w)).norm(dim=-1) / w_star.norm()).clamp(max=1.0)
        phi = torch.arcsin(ratio).cpu().numpy()
        return torch.as_tensor(np.asarray(step_of_phi(phi), dtype=float), dtype=w.dtype, device=w.device)
    return rule


def two_stage_step(eta_small: float, eta_large: float, loss: Callable, w_star, *, drop: float = 10.0) -> Callable:
    """Warm-up (He et al. 2016): ``eta_small`` until a run's loss fell by ``drop``×, then ``eta_large`` for good.

    ``loss(w, w_star)`` gives the loss of each run, shape (R,). The switch is per run and never reverts.
    Defined in chapters/rate.md (the warm-up learning rate after Theorem 3.2).
    """
    eta_small, eta_large = v.positive_float(eta_small, "eta_small"), v.positive_float(eta_large, "eta_large")
    drop = v.positive_float(drop, "drop")
    if not callable(loss):
        raise TypeError("loss must be a function of (w, w_star)")
    state = {}

    def rule(t, w):
        current = loss(w, w_star)
        if t == 0 or "start" not in state:
            state["start"], state["switched"] = current, torch.zeros_like(current, dtype=torch.bool)
        state["switched"] = state["switched"] | (current <= state["start"] / drop)
        large = torch.full_like(current, eta_large, dtype=w.dtype)
        return torch.where(state["switched"], large, torch.full_like(large, eta_small))
    return rule


def sample_loss(Z) -> Callable:
    """The empirical loss ℓ̂(w) = ½ mean_n (f(w, Z_n) − f(w*, Z_n))² on the fixed sample ``Z`` (n, k, p), as a function
    ``loss(w, w_star)`` of one filter (p,) or R filters (R, p), returning a scalar or shape (R,).

    For step rules that read the loss at every step, such as :func:`two_stage_step` on a sample: it is the loss that
    :func:`gradient_descent` records, computed by the same fused kernel pass (chapters/performance.md), with the
    teacher outputs f(w*, Z) computed once for each w*. It equals :func:`filterlib.loss` to rounding and is much
    faster per call. Defined in chapters/rate.md (the warm-up learning rate after Theorem 3.2).
    """
    Z = v.tensor(Z, "Z", ndim=3)
    teacher = {}

    def loss(w, w_star):
        w = v.filters(w, "w", like=Z, of=" (the patch size of Z)")
        w_star = v.vector(w_star, "w_star", like=Z)
        if "w_star" not in teacher or not torch.equal(teacher["w_star"], w_star):
            teacher["w_star"], teacher["f_star"] = w_star.clone(), kernel.labels(w_star, Z)
        return kernel.loss_and_gradient(w, Z, teacher["f_star"])[0]
    return loss


class Recorder:
    """Keeps the recorded rows on the run's device and copies them to the CPU once, at the end: the recorder of
    every training loop here (chapters/gd_gaussian.md), whose deferred checks chapters/performance.md explains.

    On the CPU a non-finite loss raises at once. On a GPU, checking every record would stop the GPU at each one
    (a host sync), so finiteness is checked every ``SYNC_EVERY`` records and at the end; the error still names
    the first recorded step whose loss was non-finite, exactly as an immediate check would.
    """

    SYNC_EVERY = 256

    def __init__(self, w_star, steps, record_every, trajectory, single):
        self.w_star, self.single, self.keep_w = w_star, single, trajectory
        self.record_every = record_every
        self.rows = {"step": [], "loss": [], "distance": [], "angle": [], "w": []}
        self.steps = steps
        self.deferred = w_star.device.type != "cpu"
        self.unchecked = 0

    def due(self, t):
        return t % self.record_every == 0 or t == self.steps

    def add(self, t, w, loss):
        loss, w = loss.detach(), w.detach()
        self.rows["step"].append(t)
        self.rows["loss"].append(loss)
        self.rows["distance"].append(norm(w - self.w_star))       # no overflow of the squares (float32 from 1e19)
        self.rows["angle"].append(unit_angle(w, self.w_star))   # NaN only at an exact 0
        if self.keep_w:
            self.rows["w"].append(w)
        self.unchecked += 1
        if not self.deferred or self.unchecked >= self.SYNC_EVERY:
            self.check()

    def check(self):
        """Raise FloatingPointError at the first recorded step (among the unchecked ones) with a non-finite loss or
        distance ‖w − w*‖ (a loss can stay finite while the iterates run off to where every ReLU is off)."""
        if not self.unchecked:
            return
        count, self.unchecked = self.unchecked, 0
        t0 = len(self.rows["step"]) - count
        finite = {key: torch.isfinite(torch.stack(self.rows[key][t0:]).reshape(count, -1)).all(dim=1)
                  for key in ("loss", "distance")}
        bad = ~(finite["loss"] & finite["distance"])
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            t = self.rows["step"][t0 + i]
            if not bool(finite["loss"][i]):
                raise FloatingPointError(
                    f"the loss became non-finite at step {t}: the iterates diverged; try a smaller step size eta")
            dtype = str(self.w_star.dtype).removeprefix("torch.")
            raise FloatingPointError(f"the distance ‖w − w*‖ exceeded the range of {dtype} at step {t}: the iterates "
                                     f"diverged; try a smaller step size eta")

    def history(self, w, meta):
        self.check()
        cols = {key: torch.stack(self.rows[key]).double().cpu().numpy() for key in ("loss", "distance", "angle")}
        if self.single:
            cols = {key: val[:, 0] for key, val in cols.items()}
        traj = torch.stack(self.rows["w"]).double().cpu().numpy() if self.keep_w else None
        if traj is not None and self.single:
            traj = traj[:, 0]
        return History(step=np.asarray(self.rows["step"]), w=w[0] if self.single else w, w_star=self.w_star,
                       trajectory=traj, meta=meta, **cols)


def _progress(steps, progress, desc):
    show = config.progress_enabled() if progress is None else bool(progress)
    if not show:
        return range(steps)
    from tqdm.auto import tqdm

    return tqdm(range(steps), desc=desc, leave=False)


def _prepare(w0, w_star, Z_like, steps, record_every):
    w0 = v.tensor(w0, "w0", ndim=(1, 2))
    single = w0.dim() == 1
    w = (w0.unsqueeze(0) if single else w0).clone()
    steps = v.nonneg_int(steps, "steps")
    if record_every is None:
        record_every = max(1, steps // 1000)
    record_every = v.positive_int(record_every, "record_every")
    w, Z_like = validate(w, Z_like, w_name="w0")
    v.nonzero_rows(w, "w0", any_scale=True)         # θ(w0, w*), recorded in the history, needs w0 ≠ 0 and w* ≠ 0
    w_star = v.vector(w_star, "w_star", like=Z_like, nonzero=True, any_scale=True)
    return w, w_star, steps, record_every, single


def gradient_descent(w0, w_star, Z, eta: StepSize, steps: int, *, record_every: int | None = None,
                     trajectory: bool = False, progress: bool | None = None) -> History:
    """Full-batch gradient descent w_{t+1} = w_t − η_t ∇ℓ̂(w_t) on the fixed sample ``Z`` (n, k, p).

    ``w0`` is one filter (p,) or R filters (R, p), all trained at once on the same sample. ``eta`` is a
    positive number, a schedule ``eta(t)`` (e.g. the warm-up of Theorem 3.2's remark), or a rule ``eta(t, w)``
    of the step and the current iterates (R, p) returning a number or one step per run (an oracle step η(φ_t)).
    Records loss, ‖w − w*‖ and θ(w, w*) every ``record_every`` steps (default: about 1000 records).
    Raises ``FloatingPointError`` naming the step if the loss becomes non-finite. Defined in
    chapters/gd_gaussian.md; used in chapters/one_neuron.md, chapters/rate.md and chapters/conv_model.md.
    """
    w, w_star, steps, record_every, single = _prepare(w0, w_star, Z, steps, record_every)
    Z = v.tensor(Z, "Z", ndim=3)
    step = _step_rule(eta)
    f_star = kernel.labels(w_star, Z)
    rec = Recorder(w_star, steps, record_every, trajectory, single)
    for t in _progress(steps, progress, "GD"):
        loss, grad = kernel.loss_and_gradient(w, Z, f_star)
        if rec.due(t):
            rec.add(t, w, loss)
        w = w - step(t, w) * grad
    rec.add(steps, w, kernel.loss_and_gradient(w, Z, f_star)[0])          # the same arithmetic as every other record
    return rec.history(w, {"method": "gd", "steps": steps, "n": Z.shape[0]})


def population_gradient_descent(w0, w_star, gradient: Callable, loss: Callable, eta: StepSize, steps: int, *,
                                record_every: int | None = None, trajectory: bool = False,
                                progress: bool | None = None) -> History:
    """Gradient descent on a population loss given in closed form (Theorems 3.1, 3.2 checked exactly).

    ``gradient(w, w_star)`` and ``loss(w, w_star)`` take filters of shape (R, p) and return (R, p) and (R,),
    e.g. ``filterlib.theory.gaussian_gradient`` and ``gaussian_loss`` for Gaussian input. Everything else
    is as in :func:`gradient_descent`. Used in chapters/rate.md.
    """
    if not (callable(gradient) and callable(loss)):
        raise TypeError("gradient and loss must be functions of (w, w_star)")
    w0 = v.tensor(w0, "w0", ndim=(1, 2))
    single = w0.dim() == 1
    w = (w0.unsqueeze(0) if single else w0).clone()
    w_star = v.tensor(w_star, "w_star", ndim=1, dtype=w.dtype, device=w.device)
    v.check_size(w0, w_star.shape[0], "w0", of=" (the size of w_star)")
    v.nonzero_rows(w, "w0")
    v.nonzero_rows(w_star, "w_star")
    steps = v.nonneg_int(steps, "steps")
    record_every = v.positive_int(record_every if record_every is not None else max(1, steps // 1000),
                                  "record_every")
    step = _step_rule(eta)
    rec = Recorder(w_star, steps, record_every, trajectory, single)
    for t in _progress(steps, progress, "GD"):
        if rec.due(t):
            rec.add(t, w, loss(w, w_star))
        w = w - step(t, w) * gradient(w, w_star)
    rec.add(steps, w, loss(w, w_star))
    return rec.history(w, {"method": "population gd", "steps": steps})


def sgd(w0, w_star, data, eta: StepSize, steps: int, *, batch_size: int = 1, seed: int | None = None,
        generator: torch.Generator | None = None, monitor_size: int = 2048, record_every: int | None = None,
        trajectory: bool = False, progress: bool | None = None, draw_block: int | None = None) -> History:
    """Stochastic gradient descent on R runs at once, each run drawing its own minibatches.

    ``data`` is either a fixed sample Z of shape (n, k, p), from which each run draws ``batch_size`` examples
    uniformly with replacement at every step, or a sampler ``data(m, generator) -> Z`` of shape (m, k, p)
    that gives fresh examples (online SGD, as in Fig. 3(a)/(b)). The recorded loss is measured on a fixed
    monitor sample: all of Z (at most ``monitor_size`` examples of it), or ``monitor_size`` fresh examples
    drawn once from the sampler. Randomness comes only from ``seed`` or ``generator``.

    ``draw_block`` steps' minibatches are drawn at once (one call of the sampler, or one draw of indices, for
    ``draw_block`` steps of all runs). Fewer, larger draws matter on a GPU, where a small draw costs about as
    much as a whole step. The default is 1 on the CPU (step by step) and, on a GPU, as many steps as fit in
    ``DRAW_BLOCK_ELEMENTS`` numbers (at most 1024 steps). The minibatches are fresh and independent either way,
    but the random stream, so the exact numbers, depends on ``draw_block``.

    Defined in chapters/sgd.md; used in chapters/rate.md (Fig. 3(a)), chapters/closeness.md and chapters/mnist.md.
    """
    g = rng.resolve_generator(generator, seed)
    batch_size = v.positive_int(batch_size, "batch_size")
    monitor_size = v.positive_int(monitor_size, "monitor_size")
    if callable(data) and not isinstance(data, torch.Tensor):
        monitor = v.tensor(data(monitor_size, g), "data(monitor_size, generator)", ndim=3)

        def draw(m):
            Zb = v.tensor(data(m, g), "data(m, generator)", ndim=3)
            if Zb.shape[0] != m:
                raise ValueError(f"data(m, generator) must return m = {m} examples, got shape {tuple(Zb.shape)}")
            return Zb
    else:
        Z = v.tensor(data, "data", ndim=3)
        n = Z.shape[0]
        if n <= monitor_size:
            monitor = Z
        else:
            monitor = Z[torch.randperm(n, generator=g, device=g.device)[:monitor_size].to(Z.device)]

        def draw(m):
            return Z[torch.randint(n, (m,), generator=g, device=g.device).to(Z.device)]
    w, w_star, steps, record_every, single = _prepare(w0, w_star, monitor, steps, record_every)
    step = _step_rule(eta)
    R = w.shape[0]
    per_step = R * batch_size * monitor.shape[1] * monitor.shape[2]
    if draw_block is None:
        draw_block = 1 if w.device.type == "cpu" else max(1, min(1024, DRAW_BLOCK_ELEMENTS // per_step))
    draw_block = v.positive_int(draw_block, "draw_block")
    f_mon = kernel.outputs(w_star, monitor)
    rec = Recorder(w_star, steps, record_every, trajectory, single)
    block, used = None, draw_block
    for t in _progress(steps, progress, "SGD"):
        if rec.due(t):
            rec.add(t, w, kernel.loss_and_gradient(w, monitor, f_mon, need_gradient=False)[0])
        if used == draw_block:                                  # the next draw_block steps (fewer at the end)
            size = min(draw_block, steps - t)
            block, used = draw(size * R * batch_size).reshape(size, R, batch_size, *monitor.shape[1:]), 0
        Zb = block[used]                                        # (R, batch_size, k, p): a minibatch per run
        used += 1
        _, grad = kernel.loss_and_gradient(w, Zb, kernel.labels(w_star, Zb))
        w = w - step(t, w) * grad
    rec.add(steps, w, kernel.loss_and_gradient(w, monitor, f_mon, need_gradient=False)[0])
    return rec.history(w, {"method": "sgd", "steps": steps, "batch_size": batch_size})
