"""Benchmarks of filterbook (chapters/performance.md): `make bench` runs this file; it prints tables and writes
benchmarks/RESULTS.md.

1. ``filterlib.gradient`` for R = 16 filters on 2000 random 28×28 images (5×5 filter, stride 1, float32): time per
   step of the fused kernel against a naive per-run conv2d + autograd loop and against the memory roofline
   2 × (bytes of the patch tensor) ÷ (read bandwidth measured here, in the same process).
2. ``--book``: the whole book built from a clean copy of the working tree (no _build, so no execution cache),
   then rebuilt without changes. Takes minutes, so it is opt-in.
3. Peak memory (max RSS of the kernel) and run time of every chapter notebook, each run by nbclient in a fresh
   subprocess; the heaviest chapter is named. Skip with ``--no-chapters``.
4. SGD on images (``filterlib.sgd_images``, chapters/mnist.md): the alternatives for one step of 9 runs × 64 MNIST
   images each (5×5 filter, float32), then the paper's budget, 50 epochs × 60,000 images at batch 64 = 46,875
   steps for 2 teachers × 3 distances × 3 seeds = 18 runs, timed in full (``--no-paper-run``: projected from
   2,000 steps), against the current patch path (:func:`filterlib.sgd` on a patch tensor, projected) and the
   arithmetic floor. Skip with ``--no-images``.
6. The diagnosis (``filterlib.diagnose``, chapters/diagnose.md) of 200 photograph-like 1/f images of 256×256 at one
   filter size (5×5, stride 1, centred, default settings), timed once per stage. Skip with ``--no-diagnose``.

Timings are the minimum over repeats (the medians are printed too): on a shared machine other processes only
ever make a run slower, so the minimum is the best estimate of the cost itself. Results are merged into
benchmarks/results.json, so a partial run (say, without --book) keeps the other sections' last measurements, and
benchmarks/RESULTS.md is rendered from it. benchmarks/gpu_results.md, written by benchmarks/gpu_check.py on a CUDA
machine, is included when present.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "benchmarks"
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "RESULTS.md"
GPU_MD = HERE / "gpu_results.md"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FILTERLIB_PROGRESS", "0")

# Item 1's problem (chapters/performance.md).
N_IMAGES, SIZE, FILTER, RUNS = 2000, 28, 5, 16
TARGET_ROOFLINE, TARGET_NAIVE = 2.0, 30.0
TARGET_FLOOR = 1.5               # the GD step within 1.5× of max(memory floor, arithmetic floor)
# Item 4: the paper's MNIST budget (chapters/mnist.md).
PAPER_EPOCHS, PAPER_IMAGES, PAPER_BATCH, PAPER_RUNS, PAPER_TEACHERS = 50, 60_000, 64, 9, 2
PAPER_STEPS = PAPER_EPOCHS * PAPER_IMAGES // PAPER_BATCH                      # 46,875
TARGET_PAPER_S = 150.0
TARGET_BOOK_S, TARGET_REBUILD_S = 600.0, 15.0
# Item 6: the diagnosis of a user's photographs (chapters/diagnose.md).
DIAG_IMAGES, DIAG_SIZE, DIAG_FILTER, TARGET_DIAG_S = 200, 256, 5, 20.0


# ------------------------------------------------------------------------------------------------ helpers
def timed(fn, repeats, *, sync=lambda: None, clock=time.perf_counter):
    """(min, median) time of fn() in milliseconds (wall time by default), after one warm-up call."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        sync()
        times.append(1e3 * (clock() - start))
    return min(times), statistics.median(times)


def machine() -> dict:
    """The machine the numbers come from: CPU, cores, caches, memory, torch and its BLAS."""
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "logical_cpus": os.cpu_count()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = re.search(r"model name\s*:\s*(.*)", cpuinfo).group(1).strip()
        flags = re.search(r"flags\s*:\s*(.*)", cpuinfo).group(1).split()
        info["simd"] = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "other"
    except (OSError, AttributeError):
        info["cpu"] = platform.processor() or "unknown"
    caches = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind = (index / "level").read_text().strip(), (index / "type").read_text().strip()
            if kind != "Instruction":
                caches.append(f"L{level} {(index / 'size').read_text().strip()}")
        except OSError:
            pass
    info["caches_per_core"] = ", ".join(caches)
    try:
        kib = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1))
        info["memory_gib"] = round(kib / 2**20, 1)
    except (OSError, AttributeError):
        pass
    blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    info["blas"] = blas.group(1) if blas else "?"
    return info


def load() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


# ------------------------------------------------------------------------------------------------ item 1
def previous_gradient(W, Z, f_star):
    """The implementation before the fused pass: whole-sample einsums with (R, n, k) temporaries."""
    import torch

    pre = torch.einsum("nkp,rp->rnk", Z, W)
    k, n = Z.shape[-2], Z.shape[-3]
    resid = torch.relu(pre).mean(dim=-1) - f_star
    coef = (pre >= 0).to(Z.dtype) * (resid / (k * n)).unsqueeze(-1)
    return torch.einsum("rnk,nkp->rp", coef, Z)


def naive_loop(images, W, y):
    """One conv2d + autograd per run: the loss ½ mean (mean relu(conv2d(x, w_r)) − y)², backward, per filter."""
    import torch
    import torch.nn.functional as F

    grads = []
    x = images.unsqueeze(1)
    for r in range(W.shape[0]):
        w = W[r].detach().view(1, 1, FILTER, FILTER).clone().requires_grad_()
        out = torch.relu(F.conv2d(x, w)).mean(dim=(1, 2, 3))
        (0.5 * ((out - y) ** 2).mean()).backward()
        grads.append(w.grad.reshape(-1))
    return torch.stack(grads)


def batched_conv(images, W, y):
    """All R filters as the output channels of one conv2d, then autograd."""
    import torch
    import torch.nn.functional as F

    w = W.detach().view(-1, 1, FILTER, FILTER).clone().requires_grad_()
    out = torch.relu(F.conv2d(images.unsqueeze(1), w)).mean(dim=(2, 3))          # (n, R)
    (0.5 * ((out - y[:, None]) ** 2).mean(dim=0)).sum().backward()
    return w.grad.reshape(W.shape[0], -1)


def bench_gradient(device: str = "cpu", quick: bool = False, n_images: int = N_IMAGES, runs: int = RUNS) -> dict:
    """Item 1 (also used by gpu_check.py with device='cuda')."""
    import torch

    import filterlib as fl
    from filterlib import kernel

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    reps = 3 if quick else 15
    g = torch.Generator(device="cpu").manual_seed(2018)
    images = torch.rand(n_images, SIZE, SIZE, generator=g).to(device)
    W = torch.randn(runs, FILTER * FILTER, generator=g).to(device)
    w_star = torch.randn(FILTER * FILTER, generator=g).to(device)
    Z = fl.patches(images, FILTER)                                   # (n, k, p) = (2000, 576, 25)
    n, k, p = Z.shape
    y = kernel.labels(w_star, Z)
    res = {"device": device, "n": n, "k": k, "p": p, "R": runs, "Z_MB": Z.numel() * 4 / 1e6, "load_before": load()}

    # Read bandwidth, measured here: a full read of the patch tensor (larger than the last-level cache).
    t_read, _ = timed(lambda: Z.sum(), 5 if quick else 20, sync=sync)
    res["read_GBps"] = Z.numel() * Z.element_size() / t_read / 1e6
    res["roofline_ms"] = 2 * Z.numel() * Z.element_size() / res["read_GBps"] / 1e6
    # The arithmetic floor: the two GEMMs' flops at the speed of a large square float32 GEMM. On the CPU that
    # speed is one thread's (CPU time, which other processes hardly change) times the number of threads.
    a = torch.randn(2048, 2048, generator=g).to(device)
    if device == "cpu":
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            t_mm = timed(lambda: a @ a, 3, clock=time.process_time)[0] / threads
        finally:
            torch.set_num_threads(threads)
    else:
        t_mm, _ = timed(lambda: a @ a, 3 if quick else 5, sync=sync)
    res["gemm_GFLOPs"] = 2 * 2048**3 / t_mm / 1e6
    res["flop_floor_ms"] = 2 * (2 * n * k * p * runs) / res["gemm_GFLOPs"] / 1e6

    rows = {}
    rows["fused"] = timed(lambda: kernel.loss_and_gradient(W, Z, y), reps, sync=sync)
    rows["public"] = timed(lambda: fl.gradient(W, w_star, Z), reps, sync=sync)
    rows["previous"] = timed(lambda: previous_gradient(W, Z, y), max(3, reps // 3), sync=sync)
    rows["batched_conv"] = timed(lambda: batched_conv(images, W, y), max(3, reps // 3), sync=sync)
    rows["naive"] = timed(lambda: naive_loop(images, W, y), 2 if quick else 3, sync=sync)
    Z64, W64, ws64 = Z.double(), W.double(), w_star.double()
    y64 = kernel.labels(ws64, Z64)
    rows["fused_f64"] = timed(lambda: kernel.loss_and_gradient(W64, Z64, y64), max(3, reps // 3), sync=sync)
    res["rows"] = {key: {"min_ms": v[0], "median_ms": v[1]} for key, v in rows.items()}
    if device == "cpu":
        # CPU time on one thread: what the work costs, nearly independent of other processes on the machine.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            one = {"fused": lambda: kernel.loss_and_gradient(W, Z, y), "previous": lambda: previous_gradient(W, Z, y),
                   "batched_conv": lambda: batched_conv(images, W, y), "naive": lambda: naive_loop(images, W, y)}
            for key, fn in one.items():
                reps1 = (2 if quick else 3) if key == "naive" else (3 if quick else 7)
                res["rows"][key]["cpu1_ms"] = timed(fn, reps1, clock=time.process_time)[0]
        finally:
            torch.set_num_threads(threads)

    # Exactness: the fused gradient against autograd through conv2d, and against float64.
    fused = kernel.loss_and_gradient(W, Z, y)[1]
    auto = naive_loop(images, W, y)
    exact = kernel.loss_and_gradient(W64, Z64, y64)[1]
    res["rel_err_vs_autograd"] = float((fused - auto).norm() / auto.norm())
    res["rel_err_vs_float64"] = float((fused.double() - exact).norm() / exact.norm())

    # The chunk size (CPU only): the fused step for several CHUNK_BYTES.
    if device == "cpu" and not quick:
        sweep, saved = {}, kernel.CHUNK_BYTES
        try:
            for mib in (1, 2, 4, 8, 16, 64):
                kernel.CHUNK_BYTES = mib * 2**20
                sweep[mib] = timed(lambda: kernel.loss_and_gradient(W, Z, y), 7)[0]
        finally:
            kernel.CHUNK_BYTES = saved
        res["chunk_sweep_ms"] = sweep
        res["chunk_bytes"] = saved
    res["ratio_roofline"] = res["rows"]["fused"]["min_ms"] / res["roofline_ms"]
    res["ratio_floor"] = res["rows"]["fused"]["min_ms"] / max(res["roofline_ms"], res["flop_floor_ms"])
    res["ratio_flop_floor"] = res["rows"]["fused"]["min_ms"] / res["flop_floor_ms"]
    res["speedup_naive"] = res["rows"]["naive"]["min_ms"] / res["rows"]["fused"]["min_ms"]
    res["speedup_previous"] = res["rows"]["previous"]["min_ms"] / res["rows"]["fused"]["min_ms"]
    res["load_after"] = load()
    return res


GRADIENT_ROWS = [
    ("fused", "fused kernel, one GD step (`kernel.loss_and_gradient`, labels given)"),
    ("public", "`filterlib.gradient(W, w_star, Z)` (also computes the labels)"),
    ("fused_f64", "fused kernel, float64"),
    ("previous", "previous implementation (whole-sample einsums)"),
    ("batched_conv", "batched conv2d + autograd (16 output channels)"),
    ("naive", "naive: per-run conv2d + autograd loop"),
]


def gradient_table(res: dict) -> list[str]:
    fused = res["rows"]["fused"]["min_ms"]
    one = res["rows"]["fused"].get("cpu1_ms")
    lines = ["| method | ms per step (min) | median | × fused |"
             + (" CPU time, 1 thread (ms) | × fused |" if one else ""),
             "|---|---:|---:|---:|" + ("---:|---:|" if one else "")]
    for key, label in GRADIENT_ROWS:
        row = res["rows"][key]
        extra = ""
        if one:
            extra = (f" {row['cpu1_ms']:.1f} | {row['cpu1_ms'] / one:.2f} |" if "cpu1_ms" in row else " | |")
        lines.append(f"| {label} | {row['min_ms']:.1f} | {row['median_ms']:.1f} | {row['min_ms'] / fused:.2f} |"
                     + extra)
    blank = " | |" if one else ""
    lines.append(f"| memory roofline: 2 × {res['Z_MB']:.0f} MB ÷ {res['read_GBps']:.1f} GB/s (read bandwidth, "
                 f"measured in-process) | {res['roofline_ms']:.1f} | | {res['roofline_ms'] / fused:.2f} |" + blank)
    speed = "threads × one thread's speed of" if res["device"] == "cpu" else "the speed of"
    lines.append(f"| arithmetic floor: 2 GEMMs of 2·n·k·p·R flops at {res['gemm_GFLOPs']:.0f} GFLOP/s ({speed} "
                 f"a large square GEMM, measured in-process) | {res['flop_floor_ms']:.1f} | | "
                 f"{res['flop_floor_ms'] / fused:.2f} |" + blank)
    ok_roof = "met" if res["ratio_roofline"] <= TARGET_ROOFLINE else "**not met**"
    ok_naive = "met" if res["speedup_naive"] >= TARGET_NAIVE else "**not met**"
    ok_floor = "met" if res.get("ratio_floor", 1e9) <= TARGET_FLOOR else "**not met**"
    lines += ["",
              f"- fused ÷ max(memory roofline, arithmetic floor) = **{res.get('ratio_floor', float('nan')):.2f}** "
              f"(target ≤ {TARGET_FLOOR:g}: {ok_floor})",
              f"- fused ÷ memory roofline = **{res['ratio_roofline']:.2f}** "
              f"(target ≤ {TARGET_ROOFLINE:g}: {ok_roof}); fused ÷ arithmetic floor = {res['ratio_flop_floor']:.2f}",
              f"- naive ÷ fused = **{res['speedup_naive']:.0f}×** (target ≥ {TARGET_NAIVE:g}×: {ok_naive}); "
              f"previous ÷ fused = {res['speedup_previous']:.1f}×"
              + (f"; on one thread's CPU time naive ÷ fused = "
                 f"{res['rows']['naive']['cpu1_ms'] / one:.0f}×" if one else ""),
              f"- exactness: ‖fused − autograd‖/‖autograd‖ = {res['rel_err_vs_autograd']:.1e} (float32); "
              f"fused float32 against float64: {res['rel_err_vs_float64']:.1e}",
              f"- load average (1/5/15 min) before / after: {res['load_before']} / {res['load_after']}"]
    if "chunk_sweep_ms" in res:
        sweep = ", ".join(f"{mib} MiB: {ms:.1f}" for mib, ms in res["chunk_sweep_ms"].items())
        lines.append(f"- fused step (ms) by `CHUNK_BYTES` (the default is {res['chunk_bytes'] // 2**20} MiB): {sweep}")
    return lines


# ------------------------------------------------------------------------------------------------ item 4
def _mnist_setup(device="cpu", dtype=None):
    """The 60,000 bundled MNIST training images and the two teachers of chapters/mnist.md (random: seed 0;
    Gabor: data.PAPER_GABOR), with the chapter's step size 0.5/λ̂ and starts (3 distances × 3 seeds)."""
    import torch

    import filterlib as fl
    from filterlib import data, teacher_student

    dtype = dtype or torch.float32
    x, _ = data.mnist(dtype=dtype, device=device)
    g0 = fl.generator(0, "cpu")
    teachers = {"random": torch.randn(25, generator=g0).to(device=device, dtype=dtype),
                "Gabor": data.gabor(**data.PAPER_GABOR, dtype=dtype, device=device).reshape(-1)}
    setups = {}
    Z = fl.patches(x[:500], 5)
    for i, (name, w_star) in enumerate(teachers.items()):
        top = float(teacher_student.curvature_spectrum(w_star, Z)[0][0])
        w0 = teacher_student.init_at_distance(w_star, [1.0, 0.75, 0.5], repeats=3, seed=10 + i)
        setups[name] = (w0, w_star, 0.5 / top, 20 + i)
    return x, setups


def step_alternatives(x, w0, w_star, eta, steps: int) -> dict:
    """ms per step (minimum of 3 timed stretches of ``steps`` steps, after a warm-up) of one SGD step of 9 runs ×
    64 images, by each way of computing it."""
    import torch
    import torch.nn.functional as F

    import filterlib as fl
    from filterlib import image_sgd

    R, B, N = w0.shape[0], PAPER_BATCH, x.shape[0]
    geo = image_sgd.geometry(28, 28, 5, 1)
    flat = x.reshape(N, -1)
    y = image_sgd.labels(w_star, flat, geo)
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(N, (steps, R, B), generator=g)
    k = geo["k"]

    def loop(step, n=steps):
        def run():
            w = w0.clone()
            for t in range(n):
                w = step(w, idx[t])
        return run

    def naive(w, i):                                               # per-run conv2d + autograd
        out = []
        for r in range(R):
            wr = w[r].detach().clone().requires_grad_()
            f = F.relu(F.conv2d(x[i[r]][:, None], wr.view(1, 1, 5, 5))).mean(dim=(1, 2, 3))
            (0.5 * ((f - y[i[r]]) ** 2).mean()).backward()
            out.append(w[r] - eta * wr.grad)
        return torch.stack(out)

    def grouped(w, i):                                             # runs as the groups of one conv2d
        X = x[i.t()]                                               # (B, R, 28, 28)
        weight = w.view(R, 1, 5, 5)
        pre = F.conv2d(X, weight, groups=R)
        f = torch.relu(pre).mean(dim=(2, 3))
        go = (pre >= 0) * ((f - y[i.t()]) / (k * B))[:, :, None, None]
        gw = torch.ops.aten.convolution_backward(go, X, weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0], R,
                                                 [False, True, False])[1]
        return w - eta * gw.view(R, 25)

    def unfolded(w, i):                                            # the gathered patch tensor (R, B·k, p)
        Zb = x[i].unfold(2, 5, 1).unfold(3, 5, 1).reshape(R, B * k, 25)
        pre = torch.bmm(Zb, w[:, :, None]).view(R, B, k)
        f = torch.relu(pre).mean(dim=2)
        coef = (pre >= 0) * ((f - y[i]) / (k * B))[:, :, None]
        return w - eta * torch.bmm(coef.view(R, 1, B * k), Zb).view(R, 25)

    Z = fl.patches(x[:2048], 5)

    def patch_path():                                              # filterlib.sgd on a patch tensor
        fl.sgd(w0, w_star, Z, eta=eta, steps=steps, batch_size=B, seed=0, monitor_size=64, record_every=steps,
               progress=False)

    def engine(compile_):
        # per step: the best of 3 calls of 5·steps steps minus the best of 3 calls of none, so that the set-up of
        # a call (labels of the 60,000 images, the monitor's patches) drops out; run() returns it for `steps` steps
        def call(n):
            start = time.perf_counter()
            fl.sgd_images(w0, w_star, x, eta=eta, steps=n, batch_size=B, seed=0, record_every=max(1, n),
                          monitor=64, compile=compile_, progress=False)
            return time.perf_counter() - start

        def run():
            setup = min(call(0) for _ in range(3))
            return (min(call(5 * steps) for _ in range(3)) - setup) / 5
        return run

    few = max(1, steps // 10)
    candidates = {"naive": (loop(naive, few), few), "grouped_conv": (loop(grouped), steps),
                  "unfold_bmm": (loop(unfolded), steps), "patch_path": (patch_path, steps),
                  "engine_eager": (engine(False), steps), "engine": (engine(True), steps)}
    out = {}
    for key, (fn, n) in candidates.items():
        try:
            if key.startswith("engine"):
                fl.sgd_images(w0, w_star, x, eta=eta, steps=8, seed=0, compile=key == "engine",
                              progress=False)                      # warm-up (and compilation)
                best = fn()
            else:
                fn()                                               # warm-up (and compilation)
                best = min(timed_once(fn) for _ in range(3))
            out[key] = 1e3 * best / n
        except Exception as exc:  # noqa: BLE001 - reported in the table
            out[key] = f"failed: {type(exc).__name__}: {str(exc)[:80]}"
        print(f"    {key}: {out[key]}", flush=True)
    return out


def timed_once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_images(quick: bool = False, paper_run: bool = True) -> dict:
    """Item 4 (chapters/mnist.md): the step alternatives, then the paper's budget."""
    import torch

    import filterlib as fl

    res = {"load_before": load(), "threads": torch.get_num_threads()}
    x, setups = _mnist_setup()
    w0, w_star, eta, _ = setups["random"]
    res["steps_ms"] = step_alternatives(x, w0, w_star, eta, 20 if quick else 200)
    R, B, k, p = PAPER_RUNS, PAPER_BATCH, 576, 25
    res["flops_per_step"] = 2 * (2 * R * B * k * p)               # the p shifted products and the p sums of G
    a = torch.randn(2048, 2048)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t_mm = timed(lambda: a @ a, 3, clock=time.process_time)[0] / threads
    finally:
        torch.set_num_threads(threads)
    res["gemm_GFLOPs"] = 2 * 2048**3 / t_mm / 1e6
    total_steps = PAPER_TEACHERS * PAPER_STEPS
    res["floor_s"] = total_steps * res["flops_per_step"] / (res["gemm_GFLOPs"] * 1e9)
    patch = res["steps_ms"].get("patch_path")
    res["patch_path_s"] = total_steps * patch / 1e3 if isinstance(patch, float) else None
    steps = PAPER_STEPS if paper_run and not quick else (200 if quick else 2000)
    runs = {}
    start = time.perf_counter()
    for name, (w0, w_star, eta, seed) in setups.items():
        h = fl.sgd_images(w0, w_star, x, eta=eta, steps=steps, batch_size=B, seed=seed, monitor=2048,
                          record_every=max(1, steps // 100), progress=False)
        runs[name] = {"seconds": h.meta["seconds"], "compiled": h.meta["compiled"],
                      "final_rl10": [float(v) for v in np.log10(2 * h.loss[-1] / h.meta["monitor_label_mean"] ** 2)]}
        print(f"    {name}: {h.meta['seconds']:.1f} s for {steps} steps", flush=True)
    elapsed = time.perf_counter() - start
    res["paper_steps_timed"] = steps
    res["paper_s"] = elapsed * PAPER_STEPS / steps
    res["paper_projected"] = steps != PAPER_STEPS
    res["runs"] = runs
    res["load_after"] = load()
    return res


IMAGE_ROWS = [
    ("engine", "`filterlib.sgd_images`: the step on flat images, compiled (OpenMP threads inside; chosen)"),
    ("engine_eager", "`filterlib.sgd_images(compile=False)`: the same step, eager"),
    ("patch_path", "current path: `filterlib.sgd` on a patch tensor (per-run (R, B, k, p) gather)"),
    ("unfold_bmm", "unfolded patch tensor per step + 2 `bmm`"),
    ("grouped_conv", "grouped conv2d (runs as groups) + `convolution_backward`"),
    ("naive", "naive: per-run conv2d + autograd loop"),
]


def images_table(res: dict) -> list[str]:
    ms = res["steps_ms"]
    best = ms.get("engine") if isinstance(ms.get("engine"), float) else None
    lines = ["| one step of 9 runs × 64 images (float32) | ms per step | × engine | paper budget, 93,750 steps (s) |",
             "|---|---:|---:|---:|"]
    for key, label in IMAGE_ROWS:
        value = ms.get(key)
        if isinstance(value, float):
            ratio = f"{value / best:.2f}" if best else ""
            lines.append(f"| {label} | {value:.2f} | {ratio} | {value * 93_750 / 1e3:.0f} |")
        elif value is not None:
            lines.append(f"| {label} | {str(value).replace('|', '/')} | | |")
    floor_ms = res["flops_per_step"] / (res["gemm_GFLOPs"] * 1e9) * 1e3
    lines.append(f"| arithmetic floor: {res['flops_per_step'] / 1e6:.0f} MFLOP per step at {res['gemm_GFLOPs']:.0f} "
                 f"GFLOP/s (threads × one thread's large-GEMM speed) | {floor_ms:.2f} | "
                 f"{floor_ms / best:.2f} | {res['floor_s']:.0f} |" if best else "")
    how = (f"projected from {res['paper_steps_timed']:,} steps" if res["paper_projected"]
           else "timed in full")
    ok = "met" if res["paper_s"] <= TARGET_PAPER_S else "**not met**"
    patch = f"{res['patch_path_s']:.0f} s" if res.get("patch_path_s") else "–"
    lines += ["",
              f"- **the paper's budget** (50 epochs × 60,000 images at batch 64 = {PAPER_STEPS:,} steps; 2 teachers × "
              f"3 distances × 3 seeds = 18 runs, as two calls of 9 runs): **{res['paper_s']:.0f} s** ({how}; target "
              f"≤ {TARGET_PAPER_S:.0f} s: {ok}); the current patch path: {patch} (projected); the arithmetic floor: "
              f"{res['floor_s']:.0f} s; engine ÷ floor = {res['paper_s'] / res['floor_s']:.1f}",
              "- final relative loss (log10, 2,048 training images) per run: " + "; ".join(
                  f"{name} " + ", ".join(f"{v:.2f}" for v in r["final_rl10"]) for name, r in res["runs"].items()),
              f"- torch threads: {res['threads']}; load average (1/5/15 min) before / after: {res['load_before']} / "
              f"{res['load_after']}"]
    return lines


# ------------------------------------------------------------------------------------------------ item 6
def bench_diagnose(quick: bool = False) -> dict:
    """Item 6 (chapters/diagnose.md): one diagnosis of 200 1/f images of 256×256 (5×5 filter, stride 1, centred,
    default settings), timed in full and per stage."""
    import torch

    import filterlib as fl
    from filterlib.data.natural import natural_images
    from filterlib.diagnosis import pipeline

    n = 20 if quick else DIAG_IMAGES
    res = {"load_before": load(), "threads": torch.get_num_threads(), "n_images": n, "size": DIAG_SIZE,
           "filter_size": DIAG_FILTER}
    start = time.perf_counter()
    x = natural_images(n, DIAG_SIZE, seed=0)
    res["make_images_s"] = time.perf_counter() - start
    stages, original = {}, list(pipeline.STAGES)

    def timed_stage(label, fn):
        def run(st):
            t0 = time.perf_counter()
            fn(st)
            stages[label] = time.perf_counter() - t0
        return run

    pipeline.STAGES[:] = [(label, timed_stage(label, fn)) for label, fn in original]
    try:
        start = time.perf_counter()
        d = fl.diagnose(x, DIAG_FILTER, center=True, progress=False)
        res["seconds"] = time.perf_counter() - start
    finally:
        pipeline.STAGES[:] = original
    res["stages_s"] = stages
    res["k"], res["n_conv_images"], res["crop"] = d.setup["k"], d.setup["n_images"], d.setup["crop"]
    res["max_patches"], res["n_patches"] = d.setup["max_patches"], d.setup["n_patches"]
    res["load_after"] = load()
    return res


def diagnose_table(res: dict) -> list[str]:
    ok = "met" if res["seconds"] <= TARGET_DIAG_S else "**not met**"
    crop = res.get("crop")
    how = (f"the convolutional view on a random {crop['side']}×{crop['side']} crop of each image (k = {res['k']}, "
           f"within max_patches = {res['max_patches']:,})" if crop else f"k = {res['k']} patches per image")
    lines = ["| stage | seconds |", "|---|---:|"]
    lines += [f"| {label} | {sec:.2f} |" for label, sec in res["stages_s"].items()]
    lines += [f"| **total** | **{res['seconds']:.1f}** |", "",
              f"- {res['n_images']} images of {res['size']}×{res['size']} (1/f noise, "
              f"`filterlib.data.natural.natural_images`, made in {res['make_images_s']:.1f} s, not counted), "
              f"{res['filter_size']}×{res['filter_size']} filter, centred; {res['n_patches']:,} single patches; "
              f"{how}: **{res['seconds']:.1f} s** (target ≤ {TARGET_DIAG_S:.0f} s: {ok})",
              f"- torch threads: {res['threads']}; load average (1/5/15 min) before / after: {res['load_before']} / "
              f"{res['load_after']}"]
    return lines


# ------------------------------------------------------------------------------------------------ items 2 and 3
def notebook_chapters(root: Path = ROOT) -> list[Path]:
    """The chapters of _toc.yml that are notebooks (jupytext header), in book order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    names = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    out = []
    for name in names:
        path = root / f"{name}.md"
        if path.exists():
            text = path.read_text()
            head = text.split("---", 2)
            if text.startswith("---") and len(head) > 2 and "jupytext:" in head[1] and "format_name: myst" in head[1]:
                out.append(path)
    return out


def run_one_chapter(path: str) -> None:
    """Run in a subprocess: execute one chapter on a fresh kernel, print JSON with time and the kernel's max RSS."""
    import jupytext
    import nbclient

    nb = jupytext.read(path)
    client = nbclient.NotebookClient(nb, timeout=1800, kernel_name="python3",
                                     resources={"metadata": {"path": str(Path(path).parent)}})
    start = time.perf_counter()
    error = None
    try:
        client.execute()
    except Exception as exc:  # noqa: BLE001 - reported, not raised: the other chapters still run
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"[:300]
    seconds = time.perf_counter() - start
    # The kernel was a child of this process and has been shut down and reaped: RUSAGE_CHILDREN holds its peak.
    kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": seconds, "max_rss_mib": kib / 1024, "error": error}))


def bench_chapters(only: list[str] | None = None) -> dict:
    env = dict(os.environ, FILTERLIB_PROGRESS="0", FILTERLIB_DEVICE=os.environ.get("FILTERLIB_DEVICE", "cpu"),
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    out = {"load_before": load(), "chapters": {}}
    for path in notebook_chapters():
        if only and path.stem not in only:
            continue
        print(f"  chapter {path.stem} ...", flush=True)
        proc = subprocess.run([sys.executable, __file__, "--run-chapter", str(path)], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        try:
            row = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            row = {"seconds": None, "max_rss_mib": None, "error": (proc.stderr or proc.stdout)[-300:]}
        out["chapters"][path.stem] = row
        print(f"    {row}", flush=True)
    out["load_after"] = load()
    ok = {name: r for name, r in out["chapters"].items() if r.get("max_rss_mib")}
    if ok:
        out["heaviest"] = max(ok, key=lambda name: ok[name]["max_rss_mib"])
    return out


def chapters_table(res: dict) -> list[str]:
    lines = ["| chapter | run time (s) | peak memory of the kernel (MiB) | |", "|---|---:|---:|---|"]
    for name, row in res["chapters"].items():
        secs = f"{row['seconds']:.1f}" if row.get("seconds") is not None else "–"
        rss = f"{row['max_rss_mib']:.0f}" if row.get("max_rss_mib") is not None else "–"
        note = "**heaviest**" if name == res.get("heaviest") else ""
        if row.get("error"):
            note = f"failed: {row['error'][:120]}".replace("|", "\\|")
        lines.append(f"| {name} | {secs} | {rss} | {note} |")
    total = sum(r["seconds"] for r in res["chapters"].values() if r.get("seconds"))
    lines += ["", f"- total run time of the chapters, one after the other: {total:.0f} s; "
                  f"load average before / after: {res['load_before']} / {res['load_after']}"]
    return lines


def clean_copy(dest: Path) -> None:
    """The working tree as a fresh clone of it would be (tracked and untracked-but-not-ignored files): no _build."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def bench_book() -> dict:
    """Item 2: `make book`'s build step (tools/build_book.py) in a clean copy, then a no-change rebuild."""
    out = {"load_before": load()}
    with tempfile.TemporaryDirectory(prefix="filterbook-bench-") as tmp:
        copy = Path(tmp) / "filterbook"
        clean_copy(copy)
        # The copy's own filterlib (PYTHONPATH comes before the editable install of the working tree).
        env = dict(os.environ, PYTHONPATH=str(copy), FILTERLIB_PROGRESS="0", FILTERLIB_DEVICE="cpu")
        for key in ("clean", "rebuild"):
            print(f"  book build ({key}) in {copy} ...", flush=True)
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, str(copy / "tools" / "build_book.py")], cwd=copy, env=env,
                                  capture_output=True, text=True)
            out[f"{key}_s"] = time.perf_counter() - start
            out[f"{key}_rc"] = proc.returncode
            if proc.returncode:
                out[f"{key}_log_tail"] = (proc.stdout + proc.stderr)[-1500:]
            print(f"    {out[f'{key}_s']:.1f} s, exit code {proc.returncode}", flush=True)
        out["chapter_seconds"] = executed_seconds(copy / "_build" / ".jupyter_cache" / "global.db")
    out["load_after"] = load()
    return out


def executed_seconds(db: Path) -> dict:
    import sqlite3

    if not db.exists():
        return {}
    with sqlite3.connect(db) as con:
        rows = con.execute("select uri, data from nbcache").fetchall()
    return {Path(uri).stem: round(json.loads(data).get("execution_seconds", 0), 1) for uri, data in rows}


def book_table(res: dict) -> list[str]:
    def verdict(seconds, target, rc):
        if rc:
            return f"**build failed** (exit code {rc})"
        return "met" if seconds <= target else "**not met**"

    lines = ["| build | time (s) | target | |", "|---|---:|---:|---|",
             f"| whole book from a clean copy (empty execution cache) | {res['clean_s']:.0f} | "
             f"≤ {TARGET_BOOK_S:.0f} | {verdict(res['clean_s'], TARGET_BOOK_S, res['clean_rc'])} |",
             f"| rebuild without changes | {res['rebuild_s']:.1f} | ≤ {TARGET_REBUILD_S:.0f} | "
             f"{verdict(res['rebuild_s'], TARGET_REBUILD_S, res['rebuild_rc'])} |"]
    if res.get("chapter_seconds"):
        lines += ["", "- execution time per chapter in that build (s): "
                  + ", ".join(f"{k} {v:.0f}" for k, v in res["chapter_seconds"].items())]
    lines.append(f"- load average before / after: {res['load_before']} / {res['load_after']}")
    return lines


# ------------------------------------------------------------------------------------------------ report
def render(results: dict) -> str:
    m = results.get("machine", {})
    out = ["# Benchmark results", "",
           "Written by `make bench` (`benchmarks/bench.py`); do not edit by hand. The appendix page "
           "*Performance* (`chapters/performance.md`) includes everything below the next line.", "",
           "<!-- results-start -->", ""]
    out += ["### The machine", "",
            f"{m.get('cpu', '?')} ({m.get('simd', '?')}), {m.get('logical_cpus', '?')} logical CPUs "
            f"({m.get('threads', '?')} torch threads), caches per core: {m.get('caches_per_core', '?')}, "
            f"{m.get('memory_gib', '?')} GiB memory; torch {m.get('torch', '?')} (CPU, BLAS: {m.get('blas', '?')}), "
            f"Python {m.get('python', '?')}. The machine is shared: timings are the minimum over repeats, and "
            "the load average shows how busy it was.", ""]
    sections = [("gradient", "### 1. The closed-form gradient: 16 filters, 2000 images of 28×28, 5×5 filter, "
                             "float32", gradient_table),
                ("book", "### 2. Building the book", book_table),
                ("chapters", "### 3. Chapters: run time and peak memory", chapters_table),
                ("images", "### 4. SGD on images: the MNIST experiment at the paper's budget (chapters/mnist.md)",
                 images_table)]
    for key, title, table in sections:
        out += [title, ""]
        if key in results:
            out += [f"Measured {results[key]['when']}.", ""] + table(results[key]) + [""]
        else:
            flag = {"book": "`python benchmarks/bench.py --book`"}.get(key, "`make bench`")
            out += [f"Not measured yet: run {flag}.", ""]
    out += ["### 5. GPU", ""]
    if GPU_MD.exists():
        out += [line.replace("\n", "") for line in GPU_MD.read_text().splitlines()
                if not line.startswith("# ")] + [""]
    else:
        out += ["Not measured yet: run `python benchmarks/gpu_check.py` on a CUDA machine and save its "
                "`gpu_results.md` as `benchmarks/gpu_results.md`.", ""]
    out += ["### 6. The diagnosis of 200 images of 256×256", ""]
    if "diagnose" in results:
        out += [f"Measured {results['diagnose']['when']} (the tool of the chapter *Is my filter easy to learn?*).",
                ""] + diagnose_table(results["diagnose"]) + [""]
    else:
        out += ["Not measured yet: run `make bench`.", ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--book", action="store_true", help="also time the whole book build (minutes)")
    ap.add_argument("--no-chapters", action="store_true", help="skip item 3 (running every chapter)")
    ap.add_argument("--no-gradient", action="store_true", help="skip item 1")
    ap.add_argument("--no-images", action="store_true", help="skip item 4 (SGD on images, minutes)")
    ap.add_argument("--no-diagnose", action="store_true", help="skip item 6 (the diagnosis of 200 large images)")
    ap.add_argument("--no-paper-run", action="store_true",
                    help="item 4: project the paper's budget from 2,000 steps instead of timing it in full")
    ap.add_argument("--chapters", nargs="*", help="only these chapters (stems) in item 3")
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke test of this script)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave results.json and RESULTS.md alone")
    ap.add_argument("--run-chapter", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run_chapter:
        run_one_chapter(args.run_chapter)
        return 0
    start = time.perf_counter()
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    now = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    results["machine"] = machine()
    print(f"machine: {results['machine']}", flush=True)
    if not args.no_gradient:
        print("1. gradient ...", flush=True)
        results["gradient"] = dict(bench_gradient(quick=args.quick), when=now)
        print("\n".join(gradient_table(results["gradient"])), flush=True)
    if args.book:
        print("2. book build ...", flush=True)
        results["book"] = dict(bench_book(), when=now)
        print("\n".join(book_table(results["book"])), flush=True)
    if not args.no_chapters:
        print("3. chapters ...", flush=True)
        res = dict(bench_chapters(args.chapters), when=now)
        if args.chapters and "chapters" in results:                  # a partial run updates only its rows
            merged = dict(results["chapters"]["chapters"], **res["chapters"])
            res["chapters"] = {name: merged[name] for name in merged}
            ok = {k: r for k, r in merged.items() if r.get("max_rss_mib")}
            res["heaviest"] = max(ok, key=lambda k: ok[k]["max_rss_mib"]) if ok else None
        results["chapters"] = res
        print("\n".join(chapters_table(results["chapters"])), flush=True)
    if not args.no_images:
        print("4. SGD on images ...", flush=True)
        results["images"] = dict(bench_images(quick=args.quick, paper_run=not args.no_paper_run), when=now)
        print("\n".join(images_table(results["images"])), flush=True)
    if not args.no_diagnose:
        print("6. diagnosis of 200 images of 256×256 ...", flush=True)
        results["diagnose"] = dict(bench_diagnose(quick=args.quick), when=now)
        print("\n".join(diagnose_table(results["diagnose"])), flush=True)
    if not args.no_write:
        RESULTS_JSON.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
        RESULTS_MD.write_text(render(results))
        print(f"wrote {RESULTS_MD.relative_to(ROOT)} and {RESULTS_JSON.relative_to(ROOT)}")
    print(f"bench.py took {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
