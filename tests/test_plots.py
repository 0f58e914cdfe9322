"""filterlib.plots: the shared plotting calls draw what they claim and reject bad input."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import filterlib as fl  # noqa: E402
from filterlib import distributions, plots  # noqa: E402


@pytest.fixture
def run2d():
    Z = distributions.gaussian(500, 1, 2, seed=0)
    w_star = torch.tensor([1.0, 0.0])
    w0 = 0.1 * torch.randn(3, 2, generator=fl.generator(1))
    return Z, w_star, fl.gradient_descent(w0, w_star, Z, eta=1.0, steps=20, trajectory=True)


def test_distance_curves_plot_log10_relative_distance(run2d):
    _, _, h = run2d
    fig, ax = plt.subplots()
    plots.distance_curves(ax, h)
    assert len(ax.lines) == 3
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.log10(np.maximum(h.relative_distance[:, 0], 1e-16)))
    assert "log_{10}" in ax.get_ylabel()
    fig2, ax2 = plt.subplots()
    plots.distance_curves(ax2, h, band=True, label="median")
    assert len(ax2.lines) == 1 and len(ax2.collections) == 1
    plt.close("all")


def test_landscape_and_trajectories(run2d):
    Z, w_star, h = run2d
    fig, ax = plt.subplots()
    plots.loss_landscape_2d(ax, w_star, Z, resolution=11)
    plots.trajectories_2d(ax, h)
    np.testing.assert_allclose(ax.lines[1].get_xdata(), h.trajectory[:, 0, 0])
    plt.close("all")


def test_bad_input(run2d):
    Z, w_star, h = run2d
    fig, ax = plt.subplots()
    with pytest.raises(TypeError, match="history must be a filterlib History"):
        plots.distance_curves(ax, {"loss": 1})
    no_traj = fl.gradient_descent(h.w, w_star, Z, eta=1.0, steps=2)
    with pytest.raises(ValueError, match="trajectory=True"):
        plots.trajectories_2d(ax, no_traj)
    with pytest.raises(ValueError, match="w_star must have size p=2 .*2-D landscape"):
        plots.loss_landscape_2d(ax, torch.ones(3), Z)
    plt.close("all")


def test_loss_landscape_draws_requested_level_lines():
    import matplotlib.pyplot as plt
    from filterlib import distributions, plots
    w_star = torch.tensor([1.0, 0.0], dtype=torch.float64)
    Z = distributions.gaussian(500, 1, 2, seed=0, dtype=torch.float64)
    fig, ax = plt.subplots()
    before = len(ax.collections)
    plots.loss_landscape_2d(ax, w_star, Z, resolution=21, lines=[float(fl.loss(torch.zeros(2, dtype=torch.float64), w_star, Z))])
    assert len(ax.collections) > before + 1          # filled contours plus the level line
    with pytest.raises(ValueError, match="lines"):
        plots.loss_landscape_2d(ax, w_star, Z, resolution=21, lines=[[1.0]])
    plt.close(fig)
