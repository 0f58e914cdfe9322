"""Plotting for histories and 2-D landscapes, shared by every chapter's hidden plotting cells.

Each function draws on a matplotlib ``Axes`` it is given and returns it, so chapters compose figures and
:func:`filterlib.widgets.slider` frames from the same calls. Logarithms are base 10 and say so on the axis.

Importing this module sets matplotlib's default colour cycle to :data:`COLOURS`, a colour-blind-safe palette
(:func:`use_accessible_colours`; chapters/accessibility.md): curves drawn without an explicit colour are never told
apart by red against green alone. Where curves are compared, chapters also vary :data:`LINESTYLES` or
:data:`MARKERS`, so a figure printed in grey still reads.
"""
from __future__ import annotations

import matplotlib
import numpy as np
import torch
from cycler import cycler

from . import _validate as v
from . import model
from .train import History

# The Okabe–Ito palette (Okabe & Ito, "Color Universal Design", 2008), distinguishable with every common colour
# vision deficiency. It is ordered like matplotlib's default cycle, so C0..C4 keep their names: C0 blue, C1 orange,
# C2 (bluish) green, C3 vermillion (the red), C4 (reddish) purple; then sky blue and black. Its yellow is left out
# (a thin yellow line on white is nearly invisible), and so is a grey, which a deuteranope confuses with the others.
OKABE_ITO = {"blue": "#0072B2", "orange": "#E69F00", "green": "#009E73", "vermillion": "#D55E00",
             "purple": "#CC79A7", "sky blue": "#56B4E9", "black": "#000000"}
COLOURS = list(OKABE_ITO.values())
# Line styles and markers that tell compared curves apart without colour (in this order).
LINESTYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D"]


def use_accessible_colours() -> None:
    """Make :data:`COLOURS` matplotlib's default colour cycle (done when this module is imported).

    Defined for chapters/accessibility.md; every chapter that plots imports this module."""
    matplotlib.rcParams["axes.prop_cycle"] = cycler(color=COLOURS)


use_accessible_colours()


def distance_curves(ax, history: History, *, band: bool = False, label: str | None = None, color=None,
                    floor: float = 1e-16):
    """log10 ‖w_t − w*‖/‖w*‖ against the step: one line per run, or the median and 10–90% band (``band=True``).

    Defined in chapters/gd_gaussian.md; used in most chapters that train."""
    if not isinstance(history, History):
        raise TypeError(f"history must be a filterlib History, got {type(history).__name__}")
    y = np.log10(np.maximum(history.relative_distance, floor))
    y = y.reshape(len(history.step), -1)
    if band:
        lo, mid, hi = np.percentile(y, [10, 50, 90], axis=1)
        line, = ax.plot(history.step, mid, label=label, color=color)
        ax.fill_between(history.step, lo, hi, color=line.get_color(), alpha=0.25, linewidth=0)
    else:
        lines = ax.plot(history.step, y, color=color, alpha=0.8, linewidth=1)
        if label is not None:
            lines[0].set_label(label)
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$\log_{10}\,\|w_t - w_*\| / \|w_*\|$")
    return ax


def loss_landscape_2d(ax, w_star, Z, *, extent: float = 1.6, resolution: int = 81, levels: int = 20,
                      lines=None, line_color="black"):
    """Filled contours of the empirical loss ℓ̂(w) over a square grid of 2-D filters w, with w* marked.

    The grid is evaluated as one batch of filters (``filterlib.loss`` with w of shape (R, 2)). ``lines``: loss
    values at which to draw level lines on top (for example [ℓ̂(0)], the boundary of Theorem 3.1's region
    ℓ(w) < ℓ(0); chapters/init.md). Defined in chapters/gd_gaussian.md; used in chapters/one_neuron.md and
    chapters/init.md.
    """
    w_star = v.vector(w_star, "w_star")
    v.check_size(w_star, 2, "w_star", of=" (a 2-D landscape needs 2-dimensional filters)")
    extent = v.positive_float(extent, "extent") * float(w_star.norm())
    resolution = v.positive_int(resolution, "resolution")
    axis = torch.linspace(-extent, extent, resolution, dtype=w_star.dtype, device=w_star.device)
    W1, W2 = torch.meshgrid(axis, axis, indexing="xy")
    grid = torch.stack([W1.reshape(-1), W2.reshape(-1)], dim=1)
    values = model.loss(grid, w_star, Z).reshape(resolution, resolution).cpu().numpy()
    ax.contourf(W1.cpu().numpy(), W2.cpu().numpy(), np.log10(values + 1e-12), levels=levels, cmap="Greys_r")
    if lines is not None:
        lines = np.sort(np.asarray(v.tensor(lines, "lines", ndim=(0, 1), dtype=torch.float64).cpu()).reshape(-1))
        ax.contour(W1.cpu().numpy(), W2.cpu().numpy(), values, levels=lines, colors=line_color)
    ax.plot(*w_star.cpu().numpy(), marker="*", markersize=14, color="tab:red", linestyle="none", label="$w_*$")
    ax.set_aspect("equal")
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    return ax


def trajectories_2d(ax, history: History, *, color="tab:blue"):
    """The iterates of 2-D runs (a history recorded with ``trajectory=True``), starts marked with dots.

    Defined in chapters/gd_gaussian.md."""
    if not isinstance(history, History) or history.trajectory is None:
        raise ValueError("history must be a filterlib History recorded with trajectory=True")
    traj = history.trajectory.reshape(len(history.step), -1, history.trajectory.shape[-1])
    if traj.shape[-1] != 2:
        raise ValueError(f"trajectories_2d needs 2-D filters, got p={traj.shape[-1]}")
    for r in range(traj.shape[1]):
        ax.plot(traj[:, r, 0], traj[:, r, 1], color=color, linewidth=1, alpha=0.9)
    ax.plot(traj[0, :, 0], traj[0, :, 1], "o", color=color, markersize=3)
    return ax
