"""tools/build_book.py: the execution cache is invalidated whenever filterlib (or the environment) changes."""
import importlib.util
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("build_book", ROOT / "tools" / "build_book.py")
build_book = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_book)


def test_fingerprint_follows_filterlib_and_config(tmp_path):
    for name in build_book.INPUTS:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, tmp_path / name)
    base = build_book.fingerprint(tmp_path)
    assert build_book.fingerprint(tmp_path) == base
    (tmp_path / "filterlib" / "model.py").write_text((tmp_path / "filterlib" / "model.py").read_text() + "\n# edit\n")
    after_code = build_book.fingerprint(tmp_path)
    assert after_code != base
    (tmp_path / "requirements.lock").write_text("torch==9.9\n")
    assert build_book.fingerprint(tmp_path) != after_code
    (tmp_path / "filterlib" / "new_module.py").write_text("x = 1\n")
    assert build_book.fingerprint(tmp_path) not in (base, after_code)


def test_fingerprint_ignores_bytecode(tmp_path):
    shutil.copytree(ROOT / "filterlib", tmp_path / "filterlib", ignore=shutil.ignore_patterns("__pycache__"))
    base = build_book.fingerprint(tmp_path)
    (tmp_path / "filterlib" / "__pycache__").mkdir()
    (tmp_path / "filterlib" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0")
    assert build_book.fingerprint(tmp_path) == base


def test_generated_folders_are_excluded_from_the_book():
    """`make student` writes a whole book (with executed notebooks) into _student/: the main build must not read it,
    or every label is defined twice and the -W build fails."""
    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parent.parent / "_config.yml").read_text())
    assert {"_build", "_student", ".venv", "benchmarks"} <= set(config["exclude_patterns"])
    assert config["only_build_toc_files"] is True


def test_fingerprint_follows_the_device_and_dtype_settings(monkeypatch):
    """Outputs made on another device or in another dtype are never reused (the chapter tests read the build)."""
    import torch

    monkeypatch.setenv("FILTERLIB_DEVICE", "cpu")
    monkeypatch.delenv("FILTERLIB_DTYPE", raising=False)
    cpu = build_book.current()
    monkeypatch.setenv("FILTERLIB_DTYPE", "float64")
    assert build_book.current() != cpu
    monkeypatch.setenv("FILTERLIB_DTYPE", "float32")
    assert build_book.current() == cpu
    monkeypatch.setenv("FILTERLIB_DEVICE", "cuda")
    assert build_book.current() != cpu
    monkeypatch.setenv("FILTERLIB_DEVICE", "auto")                  # resolved: the same build as cpu or as cuda
    auto = build_book.current()
    monkeypatch.setenv("FILTERLIB_DEVICE", "cuda" if torch.cuda.is_available() else "cpu")
    assert build_book.current() == auto
