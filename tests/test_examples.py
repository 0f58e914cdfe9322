"""Every code example a user may copy runs under every documented setting: the README's Python blocks and the
docstring examples (``>>>``) of filterlib, each run in a fresh subprocess with ``FILTERLIB_DTYPE=float32`` and with
``float64`` (and ``FILTERLIB_DEVICE=cpu``, the setting every machine has).

One subprocess per setting runs all examples, each in its own namespace, and reports which failed and why.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RUNNER = r'''
import doctest, importlib, json, re, sys, traceback
from pathlib import Path

root = Path(sys.argv[1])
results = []
readme = (root / "README.md").read_text()
for i, block in enumerate(re.findall(r"```python\n(.*?)```", readme, flags=re.S)):
    try:
        exec(compile(block, f"README.md python block {i + 1}", "exec"), {"__name__": "__readme__"})
        results.append([f"README.md python block {i + 1}", None])
    except Exception:
        results.append([f"README.md python block {i + 1}", traceback.format_exc(limit=3)])
finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
for path in sorted((root / "filterlib").rglob("*.py")):
    if ">>>" not in path.read_text():
        continue
    name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
    module = importlib.import_module(name)
    for test in finder.find(module, name):
        if not test.examples:
            continue
        out = []
        failed = runner.run(test, out=out.append).failed
        results.append([f"docstring of {test.name}", "".join(out) if failed else None])
print(json.dumps(results))
'''


def run_examples(dtype: str) -> list:
    env = {**os.environ, "FILTERLIB_DTYPE": dtype, "FILTERLIB_DEVICE": "cpu", "FILTERLIB_PROGRESS": "0",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(ROOT)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_readme_and_docstring_examples_run(dtype):
    results = run_examples(dtype)
    names = [name for name, _ in results]
    assert any(name.startswith("README.md") for name in names), "the README has no Python example"
    assert any(name.startswith("docstring") for name in names), "no docstring example was found"
    failures = {name: why for name, why in results if why is not None}
    assert not failures, f"FILTERLIB_DTYPE={dtype}: " + "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def test_the_readme_documents_the_settings_the_examples_run_under():
    text = (ROOT / "README.md").read_text()
    assert re.search(r"FILTERLIB_DTYPE=float32\|float64", text)
    assert re.search(r"FILTERLIB_DEVICE=cpu\|cuda\|auto", text)
