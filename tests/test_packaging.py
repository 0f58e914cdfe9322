"""Packaging: the distribution is `filterbook` (imported as filterlib), it keeps the torch it finds, and `make lab`
installs JupyterLab with jupytext's notebook editor as the default viewer of a chapter `.md`.

The install checks ask pip to resolve the repository offline (`--dry-run --no-index --no-build-isolation`), in
this environment, and read pip's installation report: what pip would install, and the package's metadata.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import filterlib

ROOT = Path(__file__).resolve().parent.parent
LAB_OVERRIDES = ROOT / "tools" / "lab" / "overrides.json"
VIEWERS = "@jupyterlab/docmanager-extension:plugin"


def pip_report(tmp_path: Path, site: Path | None = None) -> dict:
    """pip's report for `pip install <repository>`, resolved offline against this environment; `site`, when given,
    is put first on the path pip looks for installed distributions in (to stand in for another installed torch)."""
    assert importlib.util.find_spec("setuptools") and Version(metadata.version("setuptools")) >= Version("70.1"), \
        "--no-build-isolation needs setuptools>=70.1 (the test extra) in this environment"
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site:
        env["PYTHONPATH"] = str(site)
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-build-isolation", "--quiet",
           "--disable-pip-version-check", "--report", str(report), str(ROOT)]
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"pip could not resolve the package offline:\n{done.stdout}\n{done.stderr}"
    return json.loads(report.read_text())


def installs(report: dict) -> dict[str, str]:
    return {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in report["install"]}


def package_metadata(report: dict) -> dict:
    (meta,) = [item["metadata"] for item in report["install"] if item["metadata"]["name"].lower() == "filterbook"]
    return meta


def torch_requirement(meta: dict) -> Requirement:
    (req,) = [r for r in map(Requirement, meta["requires_dist"]) if r.name == "torch" and r.marker is None]
    return req


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    return pip_report(tmp_path_factory.mktemp("pip"))


def test_the_distribution_is_filterbook_with_a_torch_lower_bound(report):
    meta = package_metadata(report)
    assert meta["name"] == "filterbook" and meta["version"] == filterlib.__version__
    spec = torch_requirement(meta).specifier
    assert spec and all(s.operator == ">=" for s in spec), f"torch must have only a lower bound, not {spec}"
    # the exact torch lives in the lock (make installs with -c requirements.lock), not in the package
    lock = (ROOT / "requirements.lock").read_text()
    pinned = Version(re.search(r"^torch==(\S+)$", lock, re.M).group(1))
    assert spec.contains(pinned), f"the lock's torch {pinned} does not satisfy the package's {spec}"


def test_installing_into_an_environment_with_torch_keeps_its_torch(report):
    import torch

    assert "torch" not in installs(report), f"pip would replace torch {torch.__version__}: {installs(report)}"
    assert set(installs(report)) == {"filterbook"}, installs(report)


def test_a_torch_at_the_lower_bound_is_kept_too(report, tmp_path):
    """An environment whose torch is the oldest the package accepts (an installed-distribution record standing in
    for it, first on the path) still gets no torch from pip."""
    bound = next(iter(torch_requirement(package_metadata(report)).specifier)).version
    oldest = f"{Version(bound).major}.{Version(bound).minor}.0"
    pinned = re.search(r"^torch==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M).group(1)
    assert Version(oldest) < Version(pinned), f"the package accepts no torch older than the lock's {pinned}"
    site = tmp_path / "site"
    record = site / f"torch-{oldest}.dist-info"
    record.mkdir(parents=True)
    (record / "METADATA").write_text(f"Metadata-Version: 2.1\nName: torch\nVersion: {oldest}\n")
    found = pip_report(tmp_path, site)
    assert found["environment"] and "torch" not in installs(found), installs(found)


def test_the_lab_overrides_make_jupytext_the_default_viewer_of_markdown():
    overrides = json.loads(LAB_OVERRIDES.read_text())
    assert overrides == {VIEWERS: {"defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}}}


def test_the_lab_extra_is_pinned_by_the_lock(report):
    lab = {Requirement(r).name for r in package_metadata(report)["requires_dist"] if 'extra == "lab"' in r}
    assert lab == {"jupyterlab", "jupytext", "nbconvert"}
    lock = (ROOT / "requirements.lock").read_text()
    for name in lab:
        assert re.search(rf"^{name}==\S+$", lock, re.M | re.I), f"{name} is not pinned in requirements.lock"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_installs_the_overrides_into_the_environment(tmp_path):
    """`make lab`'s set-up, run against an empty stand-in environment (pip and python replaced by `true`): the
    overrides land in that environment's JupyterLab settings, and the install goes through the lock."""
    venv = tmp_path / "venv"
    venv.mkdir()
    args = ["make", "--no-print-directory", f"VENV={venv}", "PYTHON=true", "PY=true", f"{venv}/.lab"]
    dry = subprocess.run([*args[:1], "-n", "-B", *args[1:], "INSTALL=INSTALL"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert "INSTALL -e '.[book,lab]'" in dry.splitlines()
    real = subprocess.run([*args, "INSTALL=true"], cwd=ROOT, capture_output=True, text=True)
    assert real.returncode == 0, real.stdout + real.stderr
    installed = venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert installed.read_bytes() == LAB_OVERRIDES.read_bytes()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^INSTALL := .* -c requirements\.lock$", makefile, re.M)
