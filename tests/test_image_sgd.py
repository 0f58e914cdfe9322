"""filterlib.image_sgd.sgd_images (chapters/mnist.md): every step of every run against a plain reference (a loop over
runs, conv2d and autograd, minibatches drawn as the docstring says), for both strides and both sampling modes,
compiled and eager; determinism; the monitor; the CPU and a GPU; input checks. No timing here
(benchmarks/bench.py measures the speed)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import filterlib as fl
from filterlib import data, image_sgd

f64 = torch.float64


def _images(n, h, w, seed, dtype=f64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, h, w, generator=g, dtype=dtype)
    return x * (torch.rand(n, h, w, generator=g, dtype=dtype) < 0.6)              # blank pixels, as in digits


def _start(p, runs, seed, dtype=f64):
    g = torch.Generator().manual_seed(seed)
    w_star = torch.randn(p, generator=g, dtype=dtype)
    return w_star, w_star + 0.6 * torch.randn(runs, p, generator=g, dtype=dtype)


def reference(w0, w_star, X, *, eta, steps, batch, size, stride, seed, replacement=False, monitor=None):
    """Plain SGD, run by run: conv2d + autograd. Minibatches as documented: each run walks through its own
    permutations (drawn epoch by epoch, run by run, from a CPU generator seeded with ``seed``), or blocks of
    DRAW_BLOCK steps of uniform draws (R, DRAW_BLOCK·B). Returns the iterates (steps + 1, R, p) and the monitor
    losses (steps + 1, R)."""
    N, R = X.shape[0], w0.shape[0]
    g = torch.Generator().manual_seed(seed)
    if replacement:
        blocks = []
        while len(blocks) * image_sgd.DRAW_BLOCK < steps:
            blocks.append(torch.randint(N, (R, image_sgd.DRAW_BLOCK * batch), generator=g))
        stream = torch.cat(blocks, dim=1)
    else:
        epochs = []
        while len(epochs) * N < steps * batch:
            epochs.append(torch.stack([torch.randperm(N, generator=g) for _ in range(R)]))
        stream = torch.cat(epochs, dim=1)

    def f(w, x):
        return F.relu(F.conv2d(x[:, None], w.view(1, 1, size, size), stride=stride)).mean(dim=(1, 2, 3))
    y = f(w_star, X)
    mon = X if monitor is None else monitor
    y_mon = f(w_star, mon)
    W, traj, losses = w0.clone(), [], []
    for t in range(steps + 1):
        traj.append(W.clone())
        losses.append(torch.stack([0.5 * ((f(W[r], mon) - y_mon) ** 2).mean() for r in range(R)]))
        if t == steps:
            break
        new = []
        for r in range(R):
            idx = stream[r, t * batch:(t + 1) * batch]
            w = W[r].clone().requires_grad_()
            (0.5 * ((f(w, X[idx]) - y[idx]) ** 2).mean()).backward()
            new.append(W[r] - eta * w.grad)
        W = torch.stack(new)
    return torch.stack(traj).numpy(), torch.stack(losses).detach().numpy()


@pytest.mark.parametrize("stride,batch,replacement,compile_", [
    (1, 6, False, False), (2, 7, False, False), (1, 8, True, False), (2, 6, True, False),
    (1, 6, False, True), (2, 6, False, True),
])
def test_every_step_of_every_run_matches_the_reference(stride, batch, replacement, compile_):
    X = _images(20, 11, 10, seed=stride + batch)
    w_star, w0 = _start(9, 3, seed=batch)
    steps = 13                                                  # 13·6 = 78 draws from 20 images: four epochs
    h = fl.sgd_images(w0, w_star, X, eta=0.7, steps=steps, batch_size=batch, filter_size=3, stride=stride,
                      seed=11, record_every=1, trajectory=True, replacement=replacement, compile=compile_)
    traj, losses = reference(w0, w_star, X, eta=0.7, steps=steps, batch=batch, size=3, stride=stride, seed=11,
                             replacement=replacement)
    assert h.trajectory.shape == (steps + 1, 3, 9) and list(h.step) == list(range(steps + 1))
    np.testing.assert_allclose(h.trajectory, traj, rtol=0, atol=1e-13)
    np.testing.assert_allclose(h.loss, losses, rtol=1e-11, atol=1e-16)
    assert np.abs(traj[-1] - traj[0]).max() > 1e-2                          # the runs moved
    assert h.meta["compiled"] in (compile_, False) and h.meta["steps"] == steps


def test_monitor_images_and_record_schedule():
    X, other = _images(30, 9, 9, seed=1), _images(12, 9, 9, seed=2)
    w_star, w0 = _start(9, 2, seed=3)
    h = fl.sgd_images(w0, w_star, X, eta=0.5, steps=10, batch_size=5, filter_size=3, seed=4, record_every=4,
                      monitor=other, trajectory=True, compile=False)
    traj, losses = reference(w0, w_star, X, eta=0.5, steps=10, batch=5, size=3, stride=1, seed=4, monitor=other)
    assert list(h.step) == [0, 4, 8, 10]
    np.testing.assert_allclose(h.loss, losses[[0, 4, 8, 10]], rtol=1e-11)
    np.testing.assert_allclose(h.distance, np.linalg.norm(traj[[0, 4, 8, 10]] - w_star.numpy(), axis=-1), rtol=1e-12)
    y = F.relu(F.conv2d(other[:, None], w_star.view(1, 1, 3, 3))).mean(dim=(1, 2, 3))
    assert h.meta["monitor_size"] == 12 and h.meta["monitor_label_mean"] == pytest.approx(float(y.mean()), rel=1e-12)
    h2 = fl.sgd_images(w0, w_star, X, eta=0.5, steps=10, batch_size=5, filter_size=3, seed=4, monitor=7,
                       compile=False)
    assert h2.meta["monitor_size"] == 7 and len(h2.step) == 11              # default: about 100 records


def test_same_seed_same_history_and_other_seed_differs():
    X = _images(25, 10, 10, seed=5, dtype=torch.float32)
    w_star, w0 = _start(9, 4, seed=6, dtype=torch.float32)
    kw = dict(eta=0.3, steps=12, batch_size=4, filter_size=3, record_every=3, trajectory=True, compile=False)
    a = fl.sgd_images(w0, w_star, X, seed=1, **kw)
    b = fl.sgd_images(w0, w_star, X, generator=torch.Generator().manual_seed(1), **kw)
    c = fl.sgd_images(w0, w_star, X, seed=2, **kw)
    for key in ("loss", "distance", "angle", "trajectory"):
        assert np.array_equal(getattr(a, key), getattr(b, key))
    assert torch.equal(a.w, b.w) and not torch.equal(a.w, c.w)


def test_single_filter_and_per_run_steps():
    X = _images(16, 8, 8, seed=7)
    w_star, w0 = _start(4, 2, seed=8)
    one = fl.sgd_images(w0[0], w_star, X, eta=0.4, steps=5, batch_size=4, filter_size=2, seed=3, compile=False,
                        record_every=1, trajectory=True)
    traj, _ = reference(w0[:1], w_star, X, eta=0.4, steps=5, batch=4, size=2, stride=1, seed=3)
    assert one.w.shape == (4,) and one.loss.shape == (6,) and one.trajectory.shape == (6, 4)
    np.testing.assert_allclose(one.trajectory, traj[:, 0], rtol=0, atol=1e-13)
    both = fl.sgd_images(w0, w_star, X, eta=[0.4, 0.0001], steps=5, batch_size=4, filter_size=2, seed=3,
                         compile=False)
    assert both.loss.shape == (6, 2)
    assert abs(float((both.w[1] - w0[1]).norm())) < 1e-3 * float((one.w - w0[0]).norm())    # the tiny step


def test_batches_are_per_epoch_permutations():
    g = torch.Generator().manual_seed(0)
    b = image_sgd._Batches(10, 3, 4, 2, False, g, torch.device("cpu"))
    idx = b.block(image_sgd.DRAW_BLOCK)                                     # (steps, parts, R, b)
    per_run = idx.permute(2, 0, 1, 3).reshape(3, -1)                        # each run's stream of indices
    for r in range(3):
        for e in range(5):
            assert sorted(per_run[r, 10 * e:10 * (e + 1)].tolist()) == list(range(10))
    assert not torch.equal(per_run[0, :10], per_run[1, :10])               # every run its own order


def test_batch_larger_than_the_set():
    X = _images(5, 7, 7, seed=9)
    w_star, w0 = _start(9, 2, seed=10)
    for replacement in (False, True):
        h = fl.sgd_images(w0, w_star, X, eta=0.5, steps=4, batch_size=12, filter_size=3, seed=1,
                          replacement=replacement, trajectory=True, record_every=1, compile=False)
        traj, _ = reference(w0, w_star, X, eta=0.5, steps=4, batch=12, size=3, stride=1, seed=1,
                            replacement=replacement)
        np.testing.assert_allclose(h.trajectory, traj, rtol=0, atol=1e-13)


def test_compile_switches_and_fallback(monkeypatch):
    X = _images(12, 7, 7, seed=11)
    w_star, w0 = _start(4, 2, seed=12)
    kw = dict(eta=0.5, steps=6, batch_size=4, filter_size=2, seed=1, trajectory=True)
    eager = fl.sgd_images(w0, w_star, X, compile=False, **kw)
    monkeypatch.setenv("FILTERLIB_COMPILE", "0")
    assert not image_sgd.compile_enabled()
    assert fl.sgd_images(w0, w_star, X, **kw).meta["compiled"] is False
    monkeypatch.delenv("FILTERLIB_COMPILE")

    def broken(*args, **kwargs):
        raise RuntimeError("no compiler in this test")
    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(image_sgd, "_STEPS", {})
    monkeypatch.setattr(image_sgd, "_FAILED", {})
    with pytest.warns(UserWarning, match="torch.compile is not available here.*no compiler in this test"):
        h = fl.sgd_images(w0, w_star, X, compile=True, **kw)
    assert h.meta["compiled"] is False and "no compiler" in h.meta["fallback_reason"]
    assert np.array_equal(h.trajectory, eager.trajectory)


def test_learns_on_real_digits():
    x = data.mnist(n=256, dtype=f64, device="cpu")[0]
    w_star = data.gabor(**data.PAPER_GABOR, dtype=f64, device="cpu").reshape(-1)
    g = torch.Generator().manual_seed(0)
    w0 = w_star + 0.5 * w_star.norm() * torch.nn.functional.normalize(torch.randn(2, 25, generator=g, dtype=f64))
    h = fl.sgd_images(w0, w_star, x, eta=0.2, steps=200, batch_size=16, seed=0, compile=False)
    assert (h.loss[-1] < 0.1 * h.loss[0]).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cpu_and_gpu_agree():
    X = _images(40, 12, 12, seed=13)
    w_star, w0 = _start(9, 3, seed=14)
    kw = dict(eta=0.5, steps=70, batch_size=8, filter_size=3, seed=2, trajectory=True, record_every=10)
    cpu = fl.sgd_images(w0, w_star, X, **kw)
    gpu = fl.sgd_images(w0.cuda(), w_star.cuda(), X.cuda(), **kw)
    np.testing.assert_allclose(gpu.trajectory, cpu.trajectory, rtol=0, atol=1e-12)


@pytest.mark.parametrize("change,exc,match", [
    (dict(images=torch.zeros(4, 8)), ValueError, "images must have 3 dimensions"),
    (dict(images=torch.zeros(4, 8, 8, dtype=torch.int64)), TypeError, "images must be a float32 or float64"),
    (dict(filter_size=9), ValueError, "filter_size must be at most the image size"),
    (dict(filter_size=0), ValueError, "filter_size must be a positive integer"),
    (dict(stride=1.5), TypeError, "stride must be a positive integer"),
    (dict(w0=torch.zeros(2, 5, dtype=f64)), ValueError, "w0 must have size p=4"),
    (dict(w0=torch.zeros(2, 4, dtype=f64)), ValueError, "w0 must be non-zero"),
    (dict(w0=torch.ones(2, 4)), TypeError, "w0 has dtype torch.float32 but images has dtype torch.float64"),
    (dict(w_star=torch.ones(5, dtype=f64)), ValueError, "w_star must have shape"),
    (dict(eta=0.0), ValueError, "eta must be a positive finite number"),
    (dict(eta=[0.1, 0.2, 0.3]), ValueError, r"eta must be a positive number or one step per run, shape \(2,\)"),
    (dict(eta=[0.1, -0.2]), ValueError, "eta must be positive"),
    (dict(steps=-1), ValueError, "steps must be a non-negative integer"),
    (dict(batch_size=0), ValueError, "batch_size must be a positive integer"),
    (dict(record_every=0), ValueError, "record_every must be a positive integer"),
    (dict(monitor=0), ValueError, "monitor must be a positive integer"),
    (dict(monitor=torch.zeros(3, 7, 8, dtype=f64)), ValueError, "monitor images must have the size"),
    (dict(replacement=1), TypeError, "replacement must be True or False"),
    (dict(compile="yes"), TypeError, "compile must be True or False"),
    (dict(seed=None), ValueError, "pass a seed"),
    (dict(generator=torch.Generator()), ValueError, "pass either generator or seed"),
])
def test_bad_inputs_name_the_parameter(change, exc, match):
    kw = dict(w0=torch.ones(2, 4, dtype=f64), w_star=torch.ones(4, dtype=f64),
              images=torch.rand(6, 8, 8, dtype=f64), eta=0.1, steps=2, filter_size=2, seed=0, compile=False)
    kw.update(change)
    with pytest.raises(exc, match=match):
        fl.sgd_images(kw.pop("w0"), kw.pop("w_star"), kw.pop("images"), **kw)
