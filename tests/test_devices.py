"""Devices never mix: every random draw from a generator happens on that generator's device.

A generator lives on one device (``fl.generator(seed)`` on FILTERLIB_DEVICE's) and torch refuses to draw a tensor
on another one, so a chapter that draws ``torch.randn(..., generator=g)`` without a device works on the CPU and
fails on a GPU. This CPU-only test reads the code of every chapter and of filterlib and requires each draw from a
generator to name its device: ``device=g.device`` (or a name bound to it). Samplers in filterlib take the device
from their generator the same way.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import chapter_code, is_notebook

ROOT = Path(__file__).resolve().parent.parent
DRAWS = {"randn", "rand", "randint", "randperm", "normal", "bernoulli", "multinomial", "poisson"}


def sources():
    for path in sorted((ROOT / "filterlib").rglob("*.py")):
        yield str(path.relative_to(ROOT)), path.read_text()
    for md in sorted((ROOT / "chapters").glob("*.md")):
        if is_notebook(md):
            yield str(md.relative_to(ROOT)), chapter_code(md)


def mixed_draws(label: str, source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DRAWS
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
            continue
        kw = {k.arg: k.value for k in node.keywords}
        if "generator" not in kw:
            continue
        device = kw.get("device")
        where = f"{label}:{node.lineno}: {ast.unparse(node)[:90]}"
        if device is None:
            found.append(where + "  (no device=)")
        elif isinstance(device, ast.Attribute) and device.attr == "device" and \
                ast.unparse(device.value) != ast.unparse(kw["generator"]):
            found.append(where + "  (the device of another object than the generator)")
    return found


@pytest.mark.parametrize("label, source", list(sources()), ids=lambda x: x if "/" in str(x) else "")
def test_every_draw_from_a_generator_names_its_device(label, source):
    assert not mixed_draws(label, source)


def test_the_check_catches_a_draw_without_its_device():
    assert mixed_draws("x", "import torch\ntorch.randn(3, generator=g)")
    assert mixed_draws("x", "import torch\ntorch.randn(3, generator=g, device=Z.device)")
    assert not mixed_draws("x", "import torch\ntorch.randn(3, generator=g, device=g.device)")
    assert not mixed_draws("x", "import torch\ntorch.randn(3, generator=g, device=dev)")
