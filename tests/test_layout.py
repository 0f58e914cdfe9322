"""The library's layout: public seams only, no import cycle, small rooms, and references a reader can follow.

* No module in filterlib/, tools/, benchmarks/ or a chapter's code uses another module's underscore name (a
  package's own private submodules, such as ``filterlib/_validate.py``, are fine to import).
* The modules of filterlib import each other without a cycle (lazy imports inside functions count too).
* No function in filterlib is longer than 80 lines and no module longer than 600 lines.
* Every public function and class of filterlib names, in its docstring, the chapter where it is taught
  (``chapters/<name>.md``), and every chapter so named exists.
* Nothing cites documents outside the repository (the authors' reading notes or issue numbers).
"""
from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import filterlib
from conftest import chapter_code, is_notebook

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "filterlib"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 600


def library_files() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(name: str) -> bool:
    return (ROOT / Path(*name.split(".")) / "__init__.py").exists()


def is_module(name: str) -> bool:
    return is_package(name) or (ROOT / Path(*name.split("."))).with_suffix(".py").exists()


def resolve(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``from X import …`` statement in ``path`` reads from."""
    if node.level == 0:
        return node.module or ""
    base = module_name(path).split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def python_sources() -> list[tuple[str, str, Path | None]]:
    """(label, source, path) for every library, tool and benchmark file and every chapter's code."""
    out = []
    for folder in ("filterlib", "tools", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            out.append((str(path.relative_to(ROOT)), path.read_text(), path))
    for md in sorted((ROOT / "chapters").glob("*.md")):
        if is_notebook(md):
            out.append((str(md.relative_to(ROOT)), chapter_code(md), None))
    return out


def filterlib_aliases(tree: ast.AST, path: Path | None) -> dict[str, str]:
    """Local names bound to filterlib modules: ``import filterlib as fl``, ``from filterlib import theory``, …"""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "filterlib" or a.name.startswith("filterlib."):
                    names[a.asname or a.name.split(".")[0]] = a.name if a.asname else "filterlib"
        elif isinstance(node, ast.ImportFrom):
            base = resolve(path, node) if (node.level and path is not None) else (node.module or "")
            if base == "filterlib" or base.startswith("filterlib."):
                for a in node.names:
                    if is_module(f"{base}.{a.name}"):
                        names[a.asname or a.name] = f"{base}.{a.name}"
    return names


def private_uses(label: str, source: str, path: Path | None) -> list[str]:
    tree = ast.parse(source)
    here = module_name(path) if path is not None and PKG in path.parents else None
    aliases = filterlib_aliases(tree, path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = resolve(path, node) if (node.level and path is not None) else (node.module or "")
            if not (base == "filterlib" or base.startswith("filterlib.")):
                continue
            for a in node.names:
                if private(a.name) and not is_module(f"{base}.{a.name}"):
                    found.append(f"{label}:{node.lineno}: from {base} import {a.name}")
        elif isinstance(node, ast.Attribute) and private(node.attr) and isinstance(node.value, ast.Name):
            target = aliases.get(node.value.id)
            if target and target != here and not is_module(f"{target}.{node.attr}"):
                found.append(f"{label}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    found = [use for label, source, path in python_sources() for use in private_uses(label, source, path)]
    assert not found, "private names used across modules:\n" + "\n".join(found)


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in library_files():
        name = module_name(path)
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = resolve(path, node)
                if not (base == "filterlib" or base.startswith("filterlib.")):
                    continue
                for a in node.names:
                    edges.add(f"{base}.{a.name}" if is_module(f"{base}.{a.name}") else base)
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name.split(".")[0] == "filterlib"}
        edges.discard(name)
    return graph


def test_no_import_cycle():
    graph = import_graph()
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_rooms_are_small():
    long_modules = [f"{p.relative_to(ROOT)}: {n} lines" for p in library_files()
                    if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    long_functions = []
    for path in library_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {n} lines")
    assert not long_modules, long_modules
    assert not long_functions, long_functions


def public_objects():
    """(qualified name, object) for every public function and class defined in a filterlib module."""
    seen = {}
    for info in pkgutil.walk_packages(filterlib.__path__, "filterlib."):
        if any(private(part) for part in info.name.split(".")) or info.name == "filterlib.__main__":
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if private(name) or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if getattr(obj, "__module__", None) == info.name:
                seen[f"{info.name}.{name}"] = obj
    return sorted(seen.items())


CHAPTER_REF = re.compile(r"chapters/([A-Za-z0-9_]+)\.md")


def test_every_public_function_names_its_chapter():
    missing = [name for name, obj in public_objects() if not CHAPTER_REF.search(inspect.getdoc(obj) or "")]
    assert not missing, "public functions or classes whose docstring names no chapters/<name>.md:\n" + \
        "\n".join(missing)


def test_every_chapter_named_in_the_library_exists():
    texts = [(str(p.relative_to(ROOT)), p.read_text()) for p in library_files()]
    named = {(label, m) for label, text in texts for m in CHAPTER_REF.findall(text)}
    absent = sorted(f"{label}: chapters/{m}.md" for label, m in named if not (ROOT / "chapters" / f"{m}.md").exists())
    assert named, "no chapter named anywhere in filterlib"
    assert not absent, absent


OUTSIDE = re.compile("|".join(["SP" + "EC", "issue" + r" [0-9]", "toolchain" + " notes"]))    # as `grep -E`


@pytest.mark.parametrize("folder", ["filterlib", "chapters", "tools", "tests", "_config.yml"])
def test_nothing_cites_documents_outside_the_repository(folder):
    base = ROOT / folder
    files = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file() and p.suffix in
                                            (".py", ".md", ".ipynb", ".yml", ".txt")]
    hits = [f"{p.relative_to(ROOT)}:{i}: {line.strip()[:100]}" for p in files
            for i, line in enumerate(p.read_text().splitlines(), 1) if OUTSIDE.search(line)]
    assert not hits, "\n".join(hits)
