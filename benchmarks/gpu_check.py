"""Correctness and speed of filterlib on a GPU, in about three minutes (chapters/performance.md). Needs no network.

    python benchmarks/gpu_check.py                        # on a CUDA machine, from the repository root
    python benchmarks/gpu_check.py --out-dir DIR          # also write DIR/gpu_results.md (or GPU_CHECK_OUT=DIR)
    python benchmarks/gpu_check.py --smoke --device cpu   # tiny sizes: checks that this script runs

1. The unit tests: tests/test_kernel.py with ``FILTERLIB_DEVICE=cuda`` (its tensors go to that device), and
   tests/test_model.py, tests/test_train.py, which make their tensors on the CPU, with ``FILTERLIB_DEVICE=cpu``.
2. Its own checks on the device: the closed-form gradient against autograd (float64, many chunks and one, one
   filter and many, per-run samples), exact zero at the teacher, a relative loss of exactly −inf at the teacher
   in a batch, GD on the device against GD on the CPU, the deferred divergence error of the recorder, and online
   SGD learning.
3. Item 1 of benchmarks/bench.py on the device (fused kernel, naive conv2d + autograd loop, memory roofline).
4. The target: 1024 runs × 10,000 online SGD steps of the Fig. 3(a) law (angular mixture, σ = 1, batch 1,
   step 0.004, float64 as in chapters/rate.md) in at most 10 s; with the default block draws on the GPU and,
   for comparison, step-by-step draws (projected from a shorter run when a full one would not fit the budget).
5. SGD on images (``filterlib.sgd_images``, chapters/mnist.md): the same minibatches on the CPU and on the device
   give the same iterates (float64, both strides), then the paper's MNIST budget on the device, 50 epochs ×
   60,000 images at batch 64 = 46,875 steps for 2 teachers × 9 runs, target ≤ 5 s on one H100, with the compiled
   step replayed from CUDA graphs and, for comparison, without graphs (projected from a shorter run).

Prints a table and writes it as gpu_results.md into the folder given by --out-dir, $GPU_CHECK_OUT or $OUT (and to
the file --out when given). Exits non-zero only when a correctness check fails; a benchmark that cannot run is
reported in the table instead.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("FILTERLIB_PROGRESS", "0")

START = time.perf_counter()
SGD_RUNS, SGD_STEPS, SGD_TARGET_S = 1024, 10_000, 10.0
IMAGES_TARGET_S = 5.0


def elapsed() -> float:
    return time.perf_counter() - START


class Report:
    def __init__(self):
        self.lines: list[str] = []
        self.failures: list[str] = []

    def add(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.add(f"| {name} | {'ok' if ok else '**FAILED**'} | {detail} |")
        if not ok:
            self.failures.append(name)


def run_pytest(rep: Report, device: str, budget: float) -> None:
    """tests/test_kernel.py on the device; test_model and test_train (CPU tensors throughout) on the CPU.

    test_model/test_train do not follow FILTERLIB_DEVICE (their tensors are made on the CPU), and with
    FILTERLIB_DEVICE=cuda an online-SGD test would mix its CPU start with samples drawn by a CUDA generator;
    they run with FILTERLIB_DEVICE=cpu to check this machine's environment, the device is covered by test_kernel.
    """
    runs = [(device, ["tests/test_kernel.py"]), ("cpu", ["tests/test_model.py", "tests/test_train.py"])]
    deadline = time.perf_counter() + budget
    for dev, files in runs:
        left = deadline - time.perf_counter()
        name = f"pytest {' '.join(Path(f).name for f in files)} (FILTERLIB_DEVICE={dev})"
        if left < 5:
            rep.add(f"| {name} | skipped | out of time |")
            continue
        env = dict(os.environ, FILTERLIB_DEVICE=dev, FILTERLIB_PROGRESS="0",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *files]
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=left)
        except subprocess.TimeoutExpired:
            rep.add(f"| {name} | skipped | did not finish in {left:.0f} s |")
            continue
        if "No module named pytest" in proc.stderr:
            rep.add(f"| {name} | skipped | pytest is not installed; the checks below cover the device |")
            return
        tail = (proc.stdout + proc.stderr).strip().splitlines()
        rep.check(name, proc.returncode == 0, (tail[-1] if tail else "").replace("|", "/"))
        if proc.returncode:
            print("\n".join(tail[-40:]))


def device_checks(rep: Report, device: str) -> None:
    import torch

    import filterlib as fl
    from filterlib import distributions, kernel, model, train

    f64 = torch.float64
    g = fl.generator(1, device)

    def rel(a, b):
        return float((a - b).norm() / b.norm())

    def autograd(W, w_star, Z):
        W = W.detach().clone().requires_grad_()
        fl.loss(W, w_star, Z).sum().backward()
        return W.grad

    Z = distributions.gaussian(3000, 16, 9, generator=g, dtype=f64)
    w_star = torch.randn(9, generator=g, device=device, dtype=f64)
    W = torch.randn(16, 9, generator=g, device=device, dtype=f64)
    saved = kernel.CUDA_CHUNK_BYTES, kernel.CHUNK_BYTES
    try:
        for label, budget in (("one chunk", 2**30), ("many chunks (7 examples each)", 7 * 16 * (9 + 16) * 8)):
            kernel.CUDA_CHUNK_BYTES = kernel.CHUNK_BYTES = budget
            err = rel(fl.gradient(W, w_star, Z), autograd(W, w_star, Z))
            rep.check(f"gradient vs autograd, float64, R = 16, {label}", err < 1e-10, f"rel. error {err:.1e}")
            err1 = rel(fl.gradient(W[0], w_star, Z), autograd(W[0], w_star, Z))
            rep.check(f"gradient vs autograd, float64, one filter, {label}", err1 < 1e-10, f"rel. error {err1:.1e}")
            zero = float(fl.gradient(w_star, w_star, Z).abs().max())
            rep.check(f"gradient at the teacher is exactly 0, {label}", zero == 0.0, f"largest entry {zero:g}")
    finally:
        kernel.CUDA_CHUNK_BYTES, kernel.CHUNK_BYTES = saved
    Zr = Z[:2400].reshape(16, 150, 16, 9)
    err = rel(fl.gradient(W, w_star, Zr), autograd(W, w_star, Zr))
    rep.check("gradient vs autograd, float64, per-run samples (16, 150, 16, 9)", err < 1e-10, f"rel. error {err:.1e}")
    Zf, Wf, wsf = Z.float(), W.float(), w_star.float()
    err = rel(fl.gradient(Wf, wsf, Zf).double(), fl.gradient(W, w_star, Z))
    rep.check("gradient float32 vs float64", err < 1e-5, f"rel. error {err:.1e}")
    for dtype in (torch.float32, f64):
        Wd, wsd = W.to(dtype).clone(), w_star.to(dtype)
        Wd[::3] = wsd                                                # the teacher at several places in the batch
        rl = model.relative_loss(Wd, wsd, Z.to(dtype))
        ok = bool((rl[::3] == -float("inf")).all()) and bool(torch.isfinite(rl[1::3]).all())
        rep.check(f"relative loss of w* in a batch of 16 is exactly -inf, {dtype}", ok, f"{rl[:3].tolist()}")

    h_dev = fl.gradient_descent(0.1 * W, w_star, Z, eta=1.0, steps=50)
    h_cpu = fl.gradient_descent(0.1 * W.cpu(), w_star.cpu(), Z.cpu(), eta=1.0, steps=50)
    err = float(abs(h_dev.loss - h_cpu.loss).max() / abs(h_cpu.loss).max())
    rep.check("GD on the device vs GD on the CPU (50 steps, float64)", err < 1e-9, f"rel. loss difference {err:.1e}")

    try:
        fl.gradient_descent(W + 1.0, w_star, Z, eta=1e30, steps=40, record_every=1)
        rep.check("divergence raises FloatingPointError naming the step (deferred check)", False, "no error")
    except FloatingPointError as exc:
        rep.check("divergence raises FloatingPointError naming the step (deferred check)",
                  "non-finite at step" in str(exc), str(exc)[:80])
    rec_ok = train.Recorder(w_star, 10, 1, False, False).deferred == (device != "cpu")
    rep.check("recorder defers its host syncs on the GPU", rec_ok)

    ws2 = torch.tensor([1.0, 0.0], dtype=f64, device=device)
    w0 = torch.tensor([0.5, 0.8], dtype=f64, device=device).expand(32, 2).clone()
    sampler = lambda m, gen: distributions.angular_mixture(m, 1.0, generator=gen, dtype=f64)  # noqa: E731
    h = fl.sgd(w0, ws2, sampler, eta=0.05, steps=3000, seed=5)
    h2 = fl.sgd(w0, ws2, sampler, eta=0.05, steps=3000, seed=5)
    worst = float(h.relative_distance[-1].max())
    rep.check("online SGD (32 runs, 3000 steps, default draws) learns w* and is deterministic",
              worst < 1e-3 and bool((h.w == h2.w).all()), f"worst final ‖w − w*‖/‖w*‖ = {worst:.1e}")


def gradient_bench(rep: Report, device: str, smoke: bool) -> None:
    import bench

    res = bench.bench_gradient(device=device, quick=True, n_images=100 if smoke else bench.N_IMAGES,
                               runs=4 if smoke else bench.RUNS)
    rep.add("")
    rep.add(f"Gradient of {res['R']} filters on {res['n']} images (n, k, p) = ({res['n']}, {res['k']}, {res['p']}), "
            f"float32, device {device}:")
    rep.add("")
    for line in bench.gradient_table(res):
        rep.add(line)


def sgd_bench(rep: Report, device: str, smoke: bool, budget: float) -> None:
    import torch

    import filterlib as fl
    from filterlib import distributions

    runs, steps = (16, 300) if smoke else (SGD_RUNS, SGD_STEPS)
    f64 = torch.float64
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    w_star = torch.tensor([1.0, 0.0], dtype=f64, device=device)
    w0 = torch.tensor([0.5, 0.8], dtype=f64, device=device).expand(runs, 2).clone()
    sampler = lambda m, gen: distributions.angular_mixture(m, 1.0, generator=gen, dtype=f64)  # noqa: E731
    every = max(1, steps // 1000)                                    # the default number of records of the full run

    def run(n_steps, draw_block):
        sync()
        start = time.perf_counter()
        h = fl.sgd(w0, w_star, sampler, eta=0.004, steps=n_steps, seed=3, record_every=every, draw_block=draw_block)
        sync()
        return time.perf_counter() - start, h

    rep.add("")
    rep.add(f"Online SGD, Fig. 3(a) law (σ = 1), {runs} runs × {steps} steps, batch 1, float64, device {device} "
            f"(target ≤ {SGD_TARGET_S:g} s for 1024 × 10,000 on an H100):")
    rep.add("")
    rep.add("| draws | steps timed | time (s) | time for all steps (s) | median final log10‖w − w*‖ |")
    rep.add("|---|---:|---:|---:|---:|")
    run(20, None)                                                    # warm-up: CUDA context, kernels, cuBLAS
    for label, block in (("default (blocks on a GPU)", None), ("step by step (draw_block=1)", 1)):
        left = budget - elapsed()
        if left < 5:
            rep.add(f"| {label} | – | – | skipped: out of time budget | |")
            continue
        probe = min(steps, 500)
        t_probe, h = run(probe, block)
        projected = t_probe / probe * steps
        if probe == steps:
            timed_steps, t_timed, total, note = steps, t_probe, t_probe, ""
        elif projected < min(left - 5, 60):
            t_full, h = run(steps, block)
            timed_steps, t_timed, total, note = steps, t_full, t_full, ""
        else:
            timed_steps, t_timed, total, note = probe, t_probe, projected, " (projected)"
        dist = float(torch.tensor(h.distance[-1]).log10().median()) if timed_steps == steps else float("nan")
        rep.add(f"| {label} | {timed_steps} | {t_timed:.2f} | {total:.2f}{note} | {dist:.2f} |")


def images_checks(rep: Report, device: str, smoke: bool) -> None:
    """sgd_images: the same iterates on the CPU and on the device (float64, small images, both strides)."""
    import torch

    import filterlib as fl

    f64 = torch.float64
    g = torch.Generator().manual_seed(0)
    X = torch.rand(40, 12, 11, generator=g, dtype=f64) * (torch.rand(40, 12, 11, generator=g, dtype=f64) < 0.6)
    w_star = torch.randn(9, generator=g, dtype=f64)
    w0 = w_star + 0.6 * torch.randn(4, 9, generator=g, dtype=f64)
    for stride in (1, 2):
        kw = dict(eta=0.5, steps=100, batch_size=8, filter_size=3, stride=stride, seed=2, trajectory=True,
                  record_every=50, progress=False)                  # blocks of 50: a CUDA graph of 32 + 18 steps
        cpu = fl.sgd_images(w0, w_star, X, compile=False, **kw)                 # the reference: eager
        dev = fl.sgd_images(w0.to(device), w_star.to(device), X.to(device), **kw)
        err = float(abs(dev.trajectory - cpu.trajectory).max())
        extra = f"compiled {dev.meta['compiled']}, CUDA graph {dev.meta['cuda_graph']}"
        if dev.meta.get("fallback_reason"):
            extra += f" ({dev.meta['fallback_reason'][:100]})"
        rep.check(f"sgd_images on the device = on the CPU, float64, stride {stride}, 100 steps", err < 1e-10,
                  f"largest difference {err:.1e}; {extra}".replace("|", "/"))


def images_bench(rep: Report, device: str, smoke: bool, budget: float) -> None:
    """The paper's MNIST budget with sgd_images on the device."""
    import torch

    import bench
    import filterlib as fl

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    x, setups = bench._mnist_setup(device)
    if smoke:
        x = x[:2000]
    steps = 300 if smoke else bench.PAPER_STEPS
    rep.add("")
    rep.add(f"SGD on images, the paper's MNIST budget: {x.shape[0]:,} images, 2 teachers × 9 runs × {steps:,} steps "
            f"of batch 64, float32, device {device} (target ≤ {IMAGES_TARGET_S:g} s on an H100; command: "
            f"`python benchmarks/gpu_check.py`):")
    rep.add("")
    rep.add("| step | steps timed | time (s) | time for 2 × all steps (s) | final RL (log10), mean of 9 per teacher |")
    rep.add("|---|---:|---:|---:|---|")
    for label, graph in (("compiled, CUDA graphs (default)", None), ("compiled, no CUDA graph", False)):
        left = budget - elapsed()
        if left < 10:
            rep.add(f"| {label} | – | – | skipped: out of time budget | |")
            continue
        w0, w_star, eta, seed = setups["random"]
        fl.sgd_images(w0, w_star, x, eta=eta, steps=64, seed=seed, cuda_graph=graph, progress=False)   # warm-up
        probe = steps if graph is None else min(steps, 2000)
        total, finals, meta = 0.0, [], {}
        for name, (w0, w_star, eta, seed) in setups.items():
            sync()
            start = time.perf_counter()
            h = fl.sgd_images(w0, w_star, x, eta=eta, steps=probe, seed=seed, monitor=2048,
                              record_every=max(1, probe // 100), cuda_graph=graph, progress=False)
            sync()
            total += time.perf_counter() - start
            meta = h.meta
            finals.append(f"{name} {np.log10(2 * h.loss[-1] / h.meta['monitor_label_mean'] ** 2).mean():.2f}")
        note = "" if probe == steps else " (projected)"
        how = f"compiled {meta['compiled']}, graph {meta['cuda_graph']}"
        rep.add(f"| {label} ({how}) | {probe:,} | {total:.2f} | {total * steps / probe:.2f}{note} | "
                f"{', '.join(finals)} |")


def environment(rep: Report, device: str) -> None:
    import torch

    rep.add(f"torch {torch.__version__}, Python {sys.version.split()[0]}, device {device}")
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        rep.add(f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, compute capability "
                f"{props.major}.{props.minor}, CUDA {torch.version.cuda}; TF32 matmul allowed: "
                f"{torch.backends.cuda.matmul.allow_tf32}, TF32 cuDNN allowed: {torch.backends.cudnn.allow_tf32}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="filterlib on a GPU: tests, checks, benchmarks (< 2 minutes)")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (to test this script, e.g. on a CPU)")
    ap.add_argument("--budget", type=float, default=170.0, help="seconds for the whole script (default 170)")
    ap.add_argument("--no-pytest", action="store_true")
    ap.add_argument("--out", help="also write the markdown report to this file")
    ap.add_argument("--out-dir", default=os.environ.get("GPU_CHECK_OUT") or os.environ.get("OUT"),
                    help="write gpu_results.md into this folder (default: $GPU_CHECK_OUT, else $OUT)")
    args = ap.parse_args(argv)
    os.environ["FILTERLIB_DEVICE"] = args.device
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device; run it on a GPU machine, or with --device cpu --smoke")
        return 2
    rep = Report()
    rep.add("# GPU check (benchmarks/gpu_check.py)")
    rep.add("")
    environment(rep, args.device)
    rep.add("")
    rep.add("| check | result | detail |")
    rep.add("|---|---|---|")
    steps = [("pytest", lambda: run_pytest(rep, args.device, max(10.0, min(60.0, args.budget - elapsed() - 50)))),
             ("device checks", lambda: device_checks(rep, args.device)),
             ("gradient benchmark", lambda: gradient_bench(rep, args.device, args.smoke)),
             ("images checks", lambda: images_checks(rep, args.device, args.smoke)),
             ("SGD benchmark", lambda: sgd_bench(rep, args.device, args.smoke, args.budget - 70)),
             ("images benchmark", lambda: images_bench(rep, args.device, args.smoke, args.budget))]
    for name, step in steps:
        if name == "pytest" and args.no_pytest:
            continue
        if elapsed() > args.budget - 5:
            rep.add(f"\n{name}: skipped, the time budget ({args.budget:.0f} s) is spent")
            continue
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - report and go on with the next part
            traceback.print_exc()
            rep.add(f"\n{name}: **error** {type(exc).__name__}: {exc}")
            if name in ("device checks", "images checks"):
                rep.failures.append(name)
    rep.add("")
    rep.add(f"gpu_check finished in {elapsed():.0f} s; "
            + ("all checks passed." if not rep.failures else f"FAILED: {', '.join(rep.failures)}"))
    text = "\n".join(rep.lines) + "\n"
    for target in filter(None, [args.out_dir and Path(args.out_dir) / "gpu_results.md", args.out]):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(text)
        print(f"wrote {target}")
    return 1 if rep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
