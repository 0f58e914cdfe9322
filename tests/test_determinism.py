"""Determinism and safe loading: the same seed gives identical numbers, a chapter prints the same numbers on two
fresh executions, and no code in the package or the book unpickles or evaluates data it did not write."""
from __future__ import annotations

import os
import re
from pathlib import Path

import jupytext
import nbclient
import numpy as np
import pytest
import torch

import filterlib as fl
from filterlib import distributions, initialization, theory

ROOT = Path(__file__).resolve().parent.parent
f64 = torch.float64


def test_same_seed_same_numbers_on_cpu():
    def run():
        Z = distributions.close_patches(2_000, 5, 0.1, seed=3, dtype=f64)
        w_star = torch.tensor([1.0, 0.0], dtype=f64)
        w0 = initialization.ball(8, 2, 0.9, seed=4, dtype=f64) + w_star
        gd = fl.gradient_descent(w0, w_star, Z, eta=0.1, steps=50, progress=False)
        sgd = fl.sgd(w0, w_star, lambda m, g: distributions.angular_mixture(m, 1.0, generator=g, dtype=f64),
                     eta=0.05, steps=50, batch_size=2, seed=5, progress=False)
        est = [theory.conv_gamma(Z, w_star, 0.5), theory.L_cross(Z, w_star),
               theory.gamma(distributions.gaussian(3_000, 1, 4, seed=6, dtype=f64), torch.ones(4, dtype=f64), 0.7)]
        return [gd.distance, gd.loss, sgd.distance, sgd.angle, *[e.numpy() for e in est]]

    first, second = run(), run()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)                # bit for bit, not approximately


def test_generators_are_independent_of_global_state():
    a = distributions.gaussian(5, 2, 3, seed=9)
    torch.manual_seed(123)
    np.random.seed(123)
    torch.randn(100)
    b = distributions.gaussian(5, 2, 3, seed=9)
    assert torch.equal(a, b)


def _printed(nb) -> list[list[tuple[str, str]]]:
    """What each code cell printed: (stream name, text), consecutive chunks of one stream joined (how a
    kernel splits a cell's printing into messages depends on timing, not on the numbers)."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        streams: list[tuple[str, str]] = []
        for o in cell.get("outputs", []):
            if o.get("output_type") != "stream":
                continue
            if streams and streams[-1][0] == o["name"]:
                streams[-1] = (o["name"], streams[-1][1] + o["text"])
            else:
                streams.append((o["name"], o["text"]))
        out.append(streams)
    return out


def _fresh_execution(path: Path):
    nb = jupytext.read(path)
    env = os.environ.copy()
    os.environ["FILTERLIB_PROGRESS"] = "0"
    try:
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(env)
    return nb


@pytest.mark.book
def test_a_chapter_prints_identical_numbers_on_two_fresh_executions(executed_chapter):
    """Two clean builds print the same numbers: the SGD chapter (random starts, minibatches, many runs). The first
    execution is the book build's (a fresh kernel of its own, see conftest.executed_chapter), the second one runs
    here."""
    path = ROOT / "chapters" / "sgd.md"
    first, second = _printed(executed_chapter(path)), _printed(_fresh_execution(path))
    assert any(re.search(r"\d\.\d{3}", text) for cell in first for _, text in cell), "the chapter printed no numbers"
    assert first == second


UNSAFE = re.compile(r"import pickle|from pickle|pickle\.loads?\(|torch\.load\(|(?<![\w.])eval\(|(?<![\w.])exec\(|"
                    r"allow_pickle\s*=\s*True|marshal\.loads?\(|yaml\.load\(|import shelve|import dill|"
                    r"pd\.read_pickle|joblib\.load")


def test_no_unpickling_or_eval_of_untrusted_data():
    files = [*ROOT.glob("filterlib/**/*.py"), *ROOT.glob("tools/**/*.py"), *ROOT.glob("benchmarks/**/*.py"),
             *ROOT.glob("chapters/*.md")]
    hits = []
    for f in files:
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if UNSAFE.search(line) and "# safe:" not in line:
                hits.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not hits, "\n".join(hits)
