"""filterlib.train: GD and SGD recover w*, batched runs equal looped runs, histories, errors."""
import numpy as np
import pytest
import torch

import filterlib as fl
from filterlib import distributions

f64 = torch.float64


@pytest.fixture
def problem():
    g = fl.generator(11, "cpu")
    Z = distributions.gaussian(3000, 3, 5, generator=g, dtype=f64)
    w_star = torch.randn(5, generator=g, dtype=f64)
    w0 = 0.05 * torch.randn(6, 5, generator=g, dtype=f64)
    return Z, w_star, w0


def test_gd_recovers_w_star_from_small_random_start(problem):
    Z, w_star, w0 = problem
    h = fl.gradient_descent(w0, w_star, Z, eta=3.0, steps=300)
    assert h.relative_distance[-1].max() < 1e-8
    assert h.loss[-1].max() < 1e-15
    assert np.all(np.diff(h.loss, axis=0) <= 1e-15)  # GD on this problem decreases the loss at every step
    torch.testing.assert_close(h.w, w_star.expand(6, 5), rtol=0, atol=1e-8)


def test_gd_batched_equals_looped(problem):
    Z, w_star, w0 = problem
    batched = fl.gradient_descent(w0, w_star, Z, eta=2.0, steps=25, trajectory=True)
    for r in range(w0.shape[0]):
        single = fl.gradient_descent(w0[r], w_star, Z, eta=2.0, steps=25, trajectory=True)
        np.testing.assert_allclose(batched.loss[:, r], single.loss, rtol=1e-10, atol=1e-16)
        np.testing.assert_allclose(batched.trajectory[:, r], single.trajectory, rtol=1e-10, atol=1e-14)
        torch.testing.assert_close(batched.w[r], single.w)


def test_history_contents(problem):
    Z, w_star, w0 = problem
    h = fl.gradient_descent(w0, w_star, Z, eta=1.0, steps=10, trajectory=True)
    assert h.step.tolist() == list(range(11))
    assert h.loss.shape == h.distance.shape == h.angle.shape == (11, 6)
    assert h.trajectory.shape == (11, 6, 5)
    np.testing.assert_allclose(h.trajectory[0], w0.numpy())
    np.testing.assert_allclose(h.distance[0], (w0 - w_star).norm(dim=1).numpy())
    np.testing.assert_allclose(h.angle[0], fl.angle(w0, w_star).numpy())
    np.testing.assert_allclose(h.loss[0], fl.loss(w0, w_star, Z).numpy())
    sparse = fl.gradient_descent(w0, w_star, Z, eta=1.0, steps=10, record_every=4)
    assert sparse.step.tolist() == [0, 4, 8, 10]
    np.testing.assert_allclose(sparse.loss, h.loss[[0, 4, 8, 10]], rtol=1e-12)


def test_gd_step_is_w_minus_eta_gradient(problem):
    Z, w_star, w0 = problem
    h = fl.gradient_descent(w0, w_star, Z, eta=0.7, steps=1)
    torch.testing.assert_close(h.w, w0 - 0.7 * fl.gradient(w0, w_star, Z))


def test_step_size_schedule(problem):
    Z, w_star, w0 = problem
    etas = []
    fl.gradient_descent(w0, w_star, Z, eta=lambda t: etas.append(t) or 0.5 + t, steps=3)
    assert etas == [0, 1, 2]
    with pytest.raises(ValueError, match=r"eta must be a positive finite number, got -1.0 \(at step 2\)"):
        fl.gradient_descent(w0, w_star, Z, eta=lambda t: 1.0 if t < 2 else -1.0, steps=5)


def test_sgd_on_fixed_sample_recovers(problem):
    Z, w_star, w0 = problem
    h = fl.sgd(w0, w_star, Z, eta=1.0, steps=3000, batch_size=8, seed=0)
    assert h.relative_distance[-1].max() < 1e-6


def test_online_sgd_recovers_and_is_deterministic():
    w_star = torch.tensor([1.0, -2.0, 0.5], dtype=f64)
    w0 = 0.05 * torch.randn(4, 3, generator=fl.generator(2, "cpu"), dtype=f64)

    def sampler(m, g):
        return distributions.gaussian(m, 1, 3, generator=g, dtype=f64)

    h1 = fl.sgd(w0, w_star, sampler, eta=0.05, steps=4000, seed=3)
    h2 = fl.sgd(w0, w_star, sampler, eta=0.05, steps=4000, seed=3)
    assert h1.relative_distance[-1].max() < 1e-6          # realizable: the noise vanishes at w*, linear rate
    np.testing.assert_array_equal(h1.loss, h2.loss)
    assert h1.step[-1] == 4000 and len(h1.step) <= 1001   # default: about 1000 records


def test_sgd_batched_runs_draw_independent_batches(problem):
    Z, w_star, w0 = problem
    same_start = w0[:1].expand(4, 5).clone()
    h = fl.sgd(same_start, w_star, Z, eta=0.5, steps=5, batch_size=2, seed=1)
    assert len({tuple(np.round(row, 12)) for row in h.w.numpy()}) == 4


def test_divergence_is_a_clear_error(problem):
    Z, w_star, w0 = problem
    with pytest.raises(FloatingPointError, match=r"non-finite at step \d+.*smaller step size"):
        fl.gradient_descent(w0 + 1.0, w_star, Z, eta=1e30, steps=50)


@pytest.mark.parametrize("kwargs,match", [
    (dict(eta=0.0), "eta must be a positive finite number"),
    (dict(eta=float("nan")), "eta must be a positive finite number"),
    (dict(steps=-1), "steps must be a non-negative integer"),
    (dict(record_every=0), "record_every must be a positive integer"),
])
def test_gd_bad_input(problem, kwargs, match):
    Z, w_star, w0 = problem
    args = dict(eta=1.0, steps=3)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        fl.gradient_descent(w0, w_star, Z, **args)


def test_sgd_bad_input(problem):
    Z, w_star, w0 = problem
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        fl.sgd(w0, w_star, Z, eta=1.0, steps=3, batch_size=0, seed=0)
    with pytest.raises(ValueError, match="pass a seed"):
        fl.sgd(w0, w_star, Z, eta=1.0, steps=3)
    with pytest.raises(ValueError, match="w0 must have size p=5"):
        fl.sgd(w0[:, :4], w_star, Z, eta=1.0, steps=3, seed=0)


def test_step_rule_of_the_iterate_gives_per_run_steps(problem):
    Z, w_star, w0 = problem
    seen = []

    def rule(t, w):
        seen.append(w.shape)
        return torch.linspace(0.1, 0.6, w.shape[0], dtype=w.dtype)

    h = fl.gradient_descent(w0, w_star, Z, eta=rule, steps=1)
    assert seen == [(6, 5)]
    expected = w0 - torch.linspace(0.1, 0.6, 6, dtype=f64).unsqueeze(1) * fl.gradient(w0, w_star, Z)
    torch.testing.assert_close(h.w, expected)
    with pytest.raises(ValueError, match=r"one step per run, shape \(6,\)"):
        fl.gradient_descent(w0, w_star, Z, eta=lambda t, w: torch.ones(3, dtype=f64), steps=1)
    with pytest.raises(ValueError, match="eta must be positive and finite"):
        fl.gradient_descent(w0, w_star, Z, eta=lambda t, w: -torch.ones(6, dtype=f64), steps=1)


def test_steps_to(problem):
    Z, w_star, w0 = problem
    h = fl.gradient_descent(w0, w_star, Z, eta=2.0, steps=60)
    first = h.steps_to(1e-3)
    for r in range(6):
        hit = np.nonzero(h.relative_distance[:, r] <= 1e-3)[0]
        assert first[r] == h.step[hit[0]]
    assert np.isinf(h.steps_to(1e-30)).all()
    single = fl.gradient_descent(w0[0], w_star, Z, eta=2.0, steps=60)
    assert single.steps_to(1e-3) == first[0]


def test_adaptive_step_uses_the_angle_bound(problem):
    Z, w_star, w0 = problem
    rule = fl.train.adaptive_step(lambda phi: 1.0 + phi, w_star)
    w = w_star + 0.5 * w_star.norm() * torch.eye(5, dtype=f64)[:2]
    torch.testing.assert_close(rule(0, w), torch.full((2,), 1.0 + np.arcsin(0.5), dtype=f64))
    far = w_star + 3 * w_star.norm() * torch.eye(5, dtype=f64)[:1]
    torch.testing.assert_close(rule(0, far), torch.full((1,), 1.0 + np.pi / 2, dtype=f64))


def test_two_stage_step_switches_per_run_once(problem):
    Z, w_star, w0 = problem
    loss = lambda w, ws: fl.loss(w, ws, Z)  # noqa: E731
    rule = fl.train.two_stage_step(0.1, 0.5, loss, w_star, drop=10)
    first = rule(0, w0)
    assert torch.equal(first, torch.full((6,), 0.1, dtype=f64))
    near = w0.clone()
    near[2] = w_star + 1e-3
    assert rule(1, near).tolist() == [0.1, 0.1, 0.5, 0.1, 0.1, 0.1]
    assert rule(2, w0).tolist() == [0.1, 0.1, 0.5, 0.1, 0.1, 0.1]      # never reverts
    h = fl.gradient_descent(w0, w_star, Z, eta=fl.train.two_stage_step(0.5, 2.5, loss, w_star), steps=200)
    assert h.relative_distance[-1].max() < 1e-8


def test_sample_loss_is_the_recorded_loss_and_drives_the_warm_up(problem):
    Z, w_star, w0 = problem
    loss = fl.train.sample_loss(Z)
    # the loss gradient descent records at its start, bit for bit, and fl.loss to rounding
    recorded = fl.gradient_descent(w0, w_star, Z, eta=0.5, steps=0).loss[0]
    assert np.array_equal(loss(w0, w_star).numpy(), recorded)
    torch.testing.assert_close(loss(w0, w_star), fl.loss(w0, w_star, Z), rtol=1e-12, atol=0)
    torch.testing.assert_close(loss(w0[1], w_star), fl.loss(w0[1], w_star, Z), rtol=1e-12, atol=0)
    # a new teacher: its outputs are computed afresh; at w = w* the loss is exactly 0
    torch.testing.assert_close(loss(w0, -w_star), fl.loss(w0, -w_star, Z), rtol=1e-12, atol=0)
    assert float(loss(w_star, w_star)) == 0.0
    # the same warm-up run as with fl.loss
    slow = lambda w, ws: fl.loss(w, ws, Z)  # noqa: E731
    runs = [fl.gradient_descent(w0, w_star, Z, eta=fl.train.two_stage_step(0.5, 2.5, f, w_star), steps=60)
            for f in (loss, slow)]
    np.testing.assert_allclose(runs[0].distance, runs[1].distance, rtol=1e-10, atol=1e-14)
    with pytest.raises(ValueError, match="w"):
        loss(torch.zeros(3, dtype=f64), w_star)


def test_population_gd_on_a_quadratic():
    w_star = torch.tensor([1.0, 2.0], dtype=f64)
    loss = lambda w, ws: 0.5 * ((w - ws) ** 2).sum(-1)  # noqa: E731
    grad = lambda w, ws: w - ws  # noqa: E731
    w0 = torch.tensor([[0.0, 1.0], [2.0, 0.0], [-1.0, -1.0]], dtype=f64)
    h = fl.train.population_gradient_descent(w0, w_star, grad, loss, eta=0.5, steps=10)
    np.testing.assert_allclose(h.distance, (w0 - w_star).norm(dim=1).numpy() * 0.5 ** np.arange(11)[:, None], rtol=1e-12)
    with pytest.raises(ValueError, match="w0 must be non-zero"):
        fl.train.population_gradient_descent(torch.zeros(3, 2, dtype=f64), w_star, grad, loss, eta=0.5, steps=10)
    with pytest.raises(ValueError, match="w0 must be non-zero"):
        fl.gradient_descent(torch.zeros(2, dtype=f64), w_star, torch.ones(4, 1, 2, dtype=f64), eta=0.5, steps=10)


def test_a_zero_teacher_is_refused_like_a_zero_start(problem):
    Z, w_star, w0 = problem
    for call in (lambda ws: fl.gradient_descent(w0, ws, Z, eta=0.1, steps=3),
                 lambda ws: fl.sgd(w0, ws, Z, eta=0.1, steps=3, seed=0)):
        with pytest.raises(ValueError, match="w_star must be non-zero"):
            call(torch.zeros_like(w_star))
        call(torch.full_like(w_star, 1e-300))                            # tiny is not zero


def _dead_relu_run(dtype, eta):
    """GD on non-negative patches with a huge step: the first step throws w far out, where every ReLU is off, so the
    loss stays finite while ‖w − w*‖ is huge."""
    Z = torch.rand(50, 1, 4, generator=torch.Generator().manual_seed(0), dtype=f64).to(dtype)
    w0 = torch.tensor([2.0, 2.0, 3.0, 4.0], dtype=dtype)
    return fl.gradient_descent(w0, torch.ones(4, dtype=dtype), Z, eta=eta, steps=5)


def test_float32_distances_and_angles_beyond_the_squares_range_match_float64():
    h32, h64 = _dead_relu_run(torch.float32, 1e30), _dead_relu_run(f64, 1e30)
    assert h32.distance[-1] > 1e30 and np.isfinite(h32.distance).all()
    np.testing.assert_allclose(h32.distance, h64.distance, rtol=1e-5)   # ‖w − w*‖² (1e61) is far beyond float32
    np.testing.assert_allclose(h32.angle, h64.angle, rtol=0, atol=1e-5)
    assert h32.angle[-1] > 3.0                                           # not the π/2 that a norm of inf gives


def test_a_distance_beyond_the_dtype_is_a_clear_error():
    with pytest.raises(FloatingPointError, match=r"distance ‖w − w\*‖ exceeded the range of float32 at step 1: .*"
                                                 r"smaller step size"):
        _dead_relu_run(torch.float32, 1e38)


def test_relative_distance_of_a_tiny_teacher():
    g = fl.generator(3, "cpu")
    Z = distributions.gaussian(400, 1, 3, generator=g)                   # float32
    w_star = torch.full((3,), 1e-30)
    h = fl.gradient_descent(2 * w_star, w_star, Z, eta=0.5, steps=3)
    assert h.relative_distance[0] == pytest.approx(1.0, rel=1e-5)          # ‖w*‖² underflows float32; ‖w*‖ does not


def test_deferred_checks_name_the_first_step_whose_distance_left_the_dtype():
    """The GPU's deferred check (every SYNC_EVERY records and at the end), run on the CPU: the loss stays finite,
    the distance becomes inf at step 3, and the error names step 3 even though steps 4 and 5 were recorded too."""
    from filterlib.train import Recorder

    w_star = torch.ones(2)
    rec = Recorder(w_star, steps=5, record_every=1, trajectory=False, single=True)
    rec.deferred = True
    for t in range(6):
        w = torch.full((1, 2), 3e38 if t >= 3 else 1.0 + t)             # ‖w − w*‖ > 3.4e38 from step 3 on
        rec.add(t, w, torch.tensor([0.5]))
    with pytest.raises(FloatingPointError, match=r"distance ‖w − w\*‖ exceeded the range of float32 at step 3"):
        rec.history(w, {})
