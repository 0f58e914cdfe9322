"""Gradient descent and SGD over R runs at once, recording a :class:`History` (all chapters that train).

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
from . import config
from .model import _check_pair, _check_teacher, _forward, _loss_and_gradient

StepSize = Union[float, Callable[..., float]]


@dataclass
class History:
    """What a training run recorded, as numpy arrays on the CPU (one column per run).

    ``step`` holds the recorded step numbers (0 = the initial point); ``loss``, ``distance`` (‖w − w*‖)
    and ``angle`` (θ(w, w*) in radians, NaN where w = 0) have shape (len(step), R), or (len(step),) when a
    single filter of shape (p,) was trained. ``w`` is the final filter (a torch tensor on the run's device);
    ``trajectory`` holds the iterates at the recorded steps when asked for, shape (len(step), R, p).
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
        """‖w − w*‖ / ‖w*‖ at each recorded step."""
        return self.distance / float(self.w_star.norm())

    def steps_to(self, eps: float) -> np.ndarray:
        """First recorded step at which ‖w − w*‖ ≤ eps·‖w*‖, per run (``np.inf`` where it never happens)."""
        eps = v.positive_float(eps, "eps")
        reached = self.relative_distance.reshape(len(self.step), -1) <= eps
        first = np.where(reached.any(axis=0), self.step[reached.argmax(axis=0)].astype(float), np.inf)
        return first[0] if self.relative_distance.ndim == 1 else first


def _angles(w, w_star):
    """θ(w, w*) per row; NaN for a zero row (no angle exists there) instead of an error mid-run."""
    cos = (w @ w_star) / (w.norm(dim=-1) * w_star.norm())
    return torch.arccos(cos.clamp(-1.0, 1.0))


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

    Serves the remark after Theorem 3.2 (chapter *Theorem 3.2 and the learning rate*): the allowed step grows as
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


class _Recorder:
    def __init__(self, w_star, steps, record_every, trajectory, single):
        self.w_star, self.single, self.keep_w = w_star, single, trajectory
        self.record_every = record_every
        self.rows = {"step": [], "loss": [], "distance": [], "angle": [], "w": []}
        self.steps = steps

    def due(self, t):
        return t % self.record_every == 0 or t == self.steps

    def add(self, t, w, loss):
        if not bool(torch.isfinite(loss).all()):
            raise FloatingPointError(
                f"the loss became non-finite at step {t}: the iterates diverged; try a smaller step size eta")
        self.rows["step"].append(t)
        self.rows["loss"].append(loss.detach().double().cpu())
        self.rows["distance"].append((w - self.w_star).norm(dim=-1).detach().double().cpu())
        self.rows["angle"].append(_angles(w, self.w_star).detach().double().cpu())
        if self.keep_w:
            self.rows["w"].append(w.detach().double().cpu())

    def history(self, w, meta):
        cols = {key: torch.stack(self.rows[key]).numpy() for key in ("loss", "distance", "angle")}
        if self.single:
            cols = {key: val[:, 0] for key, val in cols.items()}
        traj = torch.stack(self.rows["w"]).numpy() if self.keep_w else None
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
    w, Z_like = _check_pair(w, Z_like, w_name="w0")
    w_star = _check_teacher(w_star, Z_like)
    return w, w_star, steps, record_every, single


def gradient_descent(w0, w_star, Z, eta: StepSize, steps: int, *, record_every: int | None = None,
                     trajectory: bool = False, progress: bool | None = None) -> History:
    """Full-batch gradient descent w_{t+1} = w_t − η_t ∇ℓ̂(w_t) on the fixed sample ``Z`` (n, k, p).

    ``w0`` is one filter (p,) or R filters (R, p), all trained at once on the same sample. ``eta`` is a
    positive number, a schedule ``eta(t)`` (e.g. the warm-up of Theorem 3.2's remark), or a rule ``eta(t, w)``
    of the step and the current iterates (R, p) returning a number or one step per run (an oracle step η(φ_t)).
    Records loss, ‖w − w*‖ and θ(w, w*) every ``record_every`` steps (default: about 1000 records).
    Raises ``FloatingPointError`` naming the step if the loss becomes non-finite.
    """
    w, w_star, steps, record_every, single = _prepare(w0, w_star, Z, steps, record_every)
    Z = v.tensor(Z, "Z", ndim=3)
    step = _step_rule(eta)
    f_star = _forward(w_star, Z)
    rec = _Recorder(w_star, steps, record_every, trajectory, single)
    for t in _progress(steps, progress, "GD"):
        loss, grad = _loss_and_gradient(w, Z, f_star)
        if rec.due(t):
            rec.add(t, w, loss)
        w = w - step(t, w) * grad
    rec.add(steps, w, _loss_and_gradient(w, Z, f_star, need_gradient=False)[0])
    return rec.history(w, {"method": "gd", "steps": steps, "n": Z.shape[0]})


def population_gradient_descent(w0, w_star, gradient: Callable, loss: Callable, eta: StepSize, steps: int, *,
                                record_every: int | None = None, trajectory: bool = False,
                                progress: bool | None = None) -> History:
    """Gradient descent on a population loss given in closed form (Theorems 3.1, 3.2 checked exactly).

    ``gradient(w, w_star)`` and ``loss(w, w_star)`` take filters of shape (R, p) and return (R, p) and (R,),
    e.g. ``filterlib.theory.gaussian_gradient`` and ``gaussian_loss`` for Gaussian input. Everything else
    is as in :func:`gradient_descent`.
    """
    if not (callable(gradient) and callable(loss)):
        raise TypeError("gradient and loss must be functions of (w, w_star)")
    w0 = v.tensor(w0, "w0", ndim=(1, 2))
    single = w0.dim() == 1
    w = (w0.unsqueeze(0) if single else w0).clone()
    w_star = v.tensor(w_star, "w_star", ndim=1, dtype=w.dtype, device=w.device)
    if w.shape[-1] != w_star.shape[0]:
        raise ValueError(f"w0 must have size p={w_star.shape[0]} in its last dimension, got shape {tuple(w0.shape)}")
    steps = v.nonneg_int(steps, "steps")
    record_every = v.positive_int(record_every if record_every is not None else max(1, steps // 1000),
                                  "record_every")
    step = _step_rule(eta)
    rec = _Recorder(w_star, steps, record_every, trajectory, single)
    for t in _progress(steps, progress, "GD"):
        if rec.due(t):
            rec.add(t, w, loss(w, w_star))
        w = w - step(t, w) * gradient(w, w_star)
    rec.add(steps, w, loss(w, w_star))
    return rec.history(w, {"method": "population gd", "steps": steps})


def sgd(w0, w_star, data, eta: StepSize, steps: int, *, batch_size: int = 1, seed: int | None = None,
        generator: torch.Generator | None = None, monitor_size: int = 2048, record_every: int | None = None,
        trajectory: bool = False, progress: bool | None = None) -> History:
    """Stochastic gradient descent on R runs at once, each run drawing its own minibatches.

    ``data`` is either a fixed sample Z of shape (n, k, p), from which each run draws ``batch_size`` examples
    uniformly with replacement at every step, or a sampler ``data(m, generator) -> Z`` of shape (m, k, p)
    that gives fresh examples (online SGD, as in Fig. 3(a)/(b)). The recorded loss is measured on a fixed
    monitor sample: all of Z (at most ``monitor_size`` examples of it), or ``monitor_size`` fresh examples
    drawn once from the sampler. Randomness comes only from ``seed`` or ``generator``.
    """
    g = config.resolve_generator(generator, seed)
    batch_size = v.positive_int(batch_size, "batch_size")
    monitor_size = v.positive_int(monitor_size, "monitor_size")
    if callable(data) and not isinstance(data, torch.Tensor):
        monitor = v.tensor(data(monitor_size, g), "data(monitor_size, generator)", ndim=3)

        def draw(R):
            Zb = v.tensor(data(R * batch_size, g), "data(m, generator)", ndim=3)
            return Zb.reshape(R, batch_size, *Zb.shape[1:])
    else:
        Z = v.tensor(data, "data", ndim=3)
        n = Z.shape[0]
        monitor = Z if n <= monitor_size else Z[torch.randperm(n, generator=g, device=g.device)[:monitor_size].to(Z.device)]

        def draw(R):
            idx = torch.randint(n, (R, batch_size), generator=g, device=g.device).to(Z.device)
            return Z[idx]
    w, w_star, steps, record_every, single = _prepare(w0, w_star, monitor, steps, record_every)
    step = _step_rule(eta)
    R = w.shape[0]
    f_mon = _forward(w_star, monitor)
    rec = _Recorder(w_star, steps, record_every, trajectory, single)
    for t in _progress(steps, progress, "SGD"):
        if rec.due(t):
            rec.add(t, w, _loss_and_gradient(w, monitor, f_mon, need_gradient=False)[0])
        Zb = draw(R)
        _, grad = _loss_and_gradient(w, Zb, _forward(w_star, Zb))
        w = w - step(t, w) * grad
    rec.add(steps, w, _loss_and_gradient(w, monitor, f_mon, need_gradient=False)[0])
    return rec.history(w, {"method": "sgd", "steps": steps, "batch_size": batch_size})
