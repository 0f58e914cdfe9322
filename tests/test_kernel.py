"""filterlib.kernel, the fused, chunked gradient pass (chapters/performance.md), and the fast paths of SGD: exact
against autograd and the plain formula.

The tensors live on ``filterlib.device()``, so ``FILTERLIB_DEVICE=cuda pytest tests/test_kernel.py`` checks the
same on a GPU (benchmarks/gpu_check.py does that); the default (tests/conftest.py) is the CPU.
"""
import numpy as np
import pytest
import torch

import filterlib as fl
from filterlib import distributions, kernel, train

f64 = torch.float64
DEV = fl.device()


def reference(w, w_star, Z):
    """Loss and gradient from the formula, over the whole sample at once (the implementation before the fused pass)."""
    W = w if w.dim() == 2 else w.unsqueeze(0)
    pre = torch.einsum("nkp,rp->rnk", Z, W) if Z.dim() == 3 else torch.einsum("rnkp,rp->rnk", Z, W)
    f_star = torch.relu(Z @ w_star).mean(dim=-1)
    k, n = Z.shape[-2], Z.shape[-3]
    resid = torch.relu(pre).mean(dim=-1) - f_star
    coef = (pre >= 0).to(Z.dtype) * (resid / (k * n)).unsqueeze(-1)
    grad = torch.einsum("rnk,nkp->rp", coef, Z) if Z.dim() == 3 else torch.einsum("rnk,rnkp->rp", coef, Z)
    loss = 0.5 * (resid * resid).mean(dim=-1)
    return (loss, grad) if w.dim() == 2 else (loss[0], grad[0])


def autograd(w, w_star, Z):
    w = w.detach().clone().requires_grad_()
    fl.loss(w, w_star, Z).sum().backward()
    return w.grad


def sample(n, k, p, R, seed, dtype=f64):
    g = fl.generator(seed, DEV)
    Z = distributions.gaussian(n, k, p, generator=g, dtype=dtype)
    w_star = torch.randn(p, generator=g, device=DEV, dtype=dtype)
    W = torch.randn(R, p, generator=g, device=DEV, dtype=dtype)
    return Z, w_star, W


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of a few examples (about 7 for the samples below), so every test spans many chunks, the last ragged."""
    def set_examples(k, p, R, examples=7, itemsize=8):
        budget = examples * k * (p + R) * itemsize
        monkeypatch.setattr(kernel, "CHUNK_BYTES", budget)
        monkeypatch.setattr(kernel, "CUDA_CHUNK_BYTES", budget)
    return set_examples


@pytest.mark.parametrize("n,k,p,R", [(50, 9, 4, 5), (53, 1, 3, 1), (40, 16, 25, 16), (61, 4, 6, 3)])
def test_chunked_gradient_equals_formula_and_autograd(small_chunks, n, k, p, R):
    Z, w_star, W = sample(n, k, p, R, seed=n + k)
    small_chunks(k, p, R)
    chunk = kernel.chunk_examples(k, p, R, Z)
    assert chunk < n and n % chunk != 0                              # several chunks, the last one ragged
    grad = fl.gradient(W, w_star, Z)
    loss, ref = reference(W, w_star, Z)
    torch.testing.assert_close(grad, ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad, autograd(W, w_star, Z), rtol=1e-10, atol=1e-13)
    fused_loss, fused_grad = kernel.loss_and_gradient(W, Z, kernel.labels(w_star, Z))
    torch.testing.assert_close(fused_loss, loss, rtol=1e-12, atol=1e-16)
    torch.testing.assert_close(fused_grad, grad)


def test_chunk_size_does_not_change_the_result(monkeypatch):
    Z, w_star, W = sample(101, 9, 5, 4, seed=5)
    results = []
    for budget in (1, 9 * 9 * 8 * 10, 2**30):                      # one example per chunk, 10, everything
        monkeypatch.setattr(kernel, "CHUNK_BYTES", budget)
        monkeypatch.setattr(kernel, "CUDA_CHUNK_BYTES", budget)
        results.append(fl.gradient(W, w_star, Z))
    for other in results[1:]:
        torch.testing.assert_close(other, results[0], rtol=1e-13, atol=1e-15)


def test_result_does_not_depend_on_the_thread_count():
    Z, w_star, W = sample(400, 16, 9, 8, seed=6)
    threads = torch.get_num_threads()
    try:
        results, residuals = [], []
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            results.append(fl.gradient(W, w_star, Z))
            residuals.append(kernel.residual_pass(W, w_star, Z))
            assert torch.get_num_threads() == count                  # the kernel leaves the setting as it was
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(r, results[0]) for r in results[1:])
    assert all(torch.equal(r[0], residuals[0][0]) and torch.equal(r[1], residuals[0][1]) for r in residuals[1:])


@pytest.mark.parametrize("R", [1, 5, 16, 20])
def test_fused_outputs_equal_the_plain_outputs(small_chunks, R):
    """The outputs mode of the fused pass against kernel.outputs (the plain expression), over many chunks; the
    labels are the fused pass of the teacher alone."""
    Z, w_star, W = sample(53, 6, 4, R, seed=R)
    small_chunks(6, 4, R)
    f, none = kernel.fused_pass(W, Z)
    assert none is None and f.shape == (53, R)
    torch.testing.assert_close(f, kernel.outputs(W, Z).t(), rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(kernel.outputs(W, Z), fl.forward(W, Z), rtol=0, atol=0)
    assert torch.equal(kernel.labels(w_star, Z), kernel.fused_pass(w_star[None], Z)[0][:, 0])


def test_single_filter_and_R_equal_1(small_chunks):
    Z, w_star, W = sample(45, 6, 4, 1, seed=3)
    small_chunks(6, 4, 1)
    one = fl.gradient(W[0], w_star, Z)
    assert one.shape == (4,)
    torch.testing.assert_close(one, fl.gradient(W, w_star, Z)[0], rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(one, reference(W[0], w_star, Z)[1], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(one, autograd(W[0], w_star, Z), rtol=1e-10, atol=1e-13)


def test_gradient_at_the_teacher_is_exactly_zero_across_chunks(small_chunks):
    Z, w_star, _ = sample(50, 5, 4, 1, seed=4)
    small_chunks(5, 4, 1)
    assert fl.gradient(w_star, w_star, Z).abs().max() == 0
    loss, _ = kernel.loss_and_gradient(w_star, Z, kernel.labels(w_star, Z))
    assert loss == 0


def test_per_run_samples(small_chunks):
    Z, w_star, W = sample(5 * 30, 4, 6, 5, seed=8)
    Zr = Z.reshape(5, 30, 4, 6)
    small_chunks(4, 6, 5)
    grad = fl.gradient(W, w_star, Zr)
    torch.testing.assert_close(grad, reference(W, w_star, Zr)[1], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad, autograd(W, w_star, Zr), rtol=1e-10, atol=1e-13)
    looped = torch.stack([fl.gradient(W[r], w_star, Zr[r]) for r in range(5)])     # shared path, chunked
    torch.testing.assert_close(grad, looped, rtol=1e-12, atol=1e-14)


def test_float32_close_to_float64():
    Z, w_star, W = sample(300, 64, 25, 16, seed=9)
    exact = fl.gradient(W, w_star, Z)
    approx = fl.gradient(W.float(), w_star.float(), Z.float()).double()
    assert (approx - exact).norm() <= 1e-5 * exact.norm()


def test_indicator_counts_zero_preactivations():
    """1{wᵀZ ≥ 0}: a patch with wᵀZ = 0 counts as active in the fused kernel too."""
    Z = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [-1.0, 0.0]]], dtype=f64, device=DEV)
    w = torch.tensor([0.0, 1.0], dtype=f64, device=DEV)          # wᵀZ = 0 on the patches (1, 0) and (−1, 0)
    w_star = torch.tensor([1.0, 1.0], dtype=f64, device=DEV)
    torch.testing.assert_close(fl.gradient(w, w_star, Z), reference(w, w_star, Z)[1], rtol=1e-15, atol=0)


def test_gd_from_the_teacher_stays_there():
    Z, w_star, _ = sample(80, 3, 4, 1, seed=12)
    h = fl.gradient_descent(w_star, w_star, Z, eta=1.0, steps=5)
    assert torch.equal(h.w, w_star) and (h.loss == 0).all()


def test_deferred_finiteness_check_names_the_first_bad_step():
    """On a GPU the recorder checks the loss in batches; the error must still name the first non-finite step."""
    w_star = torch.ones(2, dtype=f64, device=DEV)
    rec = train.Recorder(w_star, steps=10, record_every=1, trajectory=False, single=False)
    rec.deferred = True
    w = torch.zeros(3, 2, dtype=f64, device=DEV)
    for t, value in enumerate([1.0, 0.5, float("nan"), float("inf")]):
        rec.add(t, w, torch.full((3,), value, dtype=f64, device=DEV))
    with pytest.raises(FloatingPointError, match="non-finite at step 2"):
        rec.history(w, {})


def angular(m, gen):
    return distributions.angular_mixture(m, 1.0, generator=gen, dtype=f64)


def recording(draw):
    """A sampler that records the size of every draw it makes: (list of sizes, sampler)."""
    calls = []

    def sampler(m, gen):
        calls.append(m)
        return draw(m, gen)

    return calls, sampler


def test_sgd_draw_block_one_is_the_step_by_step_stream():
    w_star = torch.tensor([1.0, 0.0], dtype=f64, device=DEV)
    w0 = torch.tensor([0.5, 0.8], dtype=f64, device=DEV).expand(4, 2).clone()
    calls, sampler = recording(angular)
    h1 = fl.sgd(w0, w_star, sampler, eta=0.004, steps=30, seed=1, draw_block=1, monitor_size=64)
    assert calls == [64] + [4] * 30
    g = fl.generator(1, DEV)
    angular(64, g)                                                   # the monitor sample comes first
    w = w0.clone()
    for _ in range(30):                                              # the step-by-step loop, written out
        Zb = angular(4, g).reshape(4, 1, 1, 2)
        w = w - 0.004 * fl.gradient(w, w_star, Zb)
    assert torch.equal(h1.w, w)


def test_sgd_draw_block_draws_in_blocks_and_still_learns():
    w_star = torch.tensor([1.0, 0.0], dtype=f64, device=DEV)
    w0 = torch.tensor([0.5, 0.8], dtype=f64, device=DEV).expand(6, 2).clone()
    calls, sampler = recording(angular)
    h = fl.sgd(w0, w_star, sampler, eta=0.05, steps=2500, seed=2, draw_block=1000, monitor_size=64)
    assert calls == [64, 6000, 6000, 3000]                            # the last block only holds what is left
    assert h.relative_distance[-1].max() < 1e-3
    again = fl.sgd(w0, w_star, angular, eta=0.05, steps=2500, seed=2, draw_block=1000, monitor_size=64)
    assert torch.equal(h.w, again.w)
    np.testing.assert_array_equal(h.loss, again.loss)


def test_sgd_fixed_sample_blocks_and_bad_draw_block():
    Z, w_star, W = sample(200, 3, 4, 5, seed=13)
    w0 = w_star + 0.1 * W
    h = fl.sgd(w0, w_star, Z, eta=0.5, steps=400, batch_size=4, seed=0, draw_block=64)
    assert h.relative_distance[-1].max() < 1e-6
    with pytest.raises(ValueError, match="draw_block must be a positive integer"):
        fl.sgd(w0, w_star, Z, eta=0.5, steps=3, seed=0, draw_block=0)
    with pytest.raises(ValueError, match="must return m = 5 examples"):
        fl.sgd(w0, w_star, lambda m, gen: distributions.gaussian(3, 3, 4, generator=gen, dtype=f64), eta=0.5,
               steps=3, seed=0, draw_block=1, monitor_size=3)
