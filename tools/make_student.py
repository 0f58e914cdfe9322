"""Write the student edition of the book into _student/ (what `make student` runs).

One source, two editions. In a chapter every exercise is a sphinx-exercise ``exercise`` block followed by a gated
solution (``solution-start`` ... ``solution-end``). The student edition removes every solution block entirely
(its text and its cells) and, right after the exercise it answers, puts a *stub* of each of the solution's
marked code cells. A code cell is marked by an answer region:

    def gd_step(w, w_star, Z, eta):
        \"\"\"One gradient-descent step.\"\"\"
        # BEGIN SOLUTION (hint: the gradient is mean_n (f(w, Z_n) − y_n) Z_w,n)
        ...
        # END SOLUTION

    selfcheck.check_gd_step(gd_step)

In the stub the region becomes ``raise NotImplementedError("<exercise label>: <hint>")`` at the indentation of
the BEGIN line; the lines outside the region (the header, the docstring, the check call) stay. The stub cell is
tagged ``raises-exception``, so the student book builds with -W and shows the error. Unmarked solution cells and
the solution text just disappear.

_student/ is a complete small book: _config.yml (title marked "student edition", sphinx-exercise's
``hide_solutions`` on as a second guard, no launch or repository buttons that would open the instructor's
notebooks unless --repository-url names the students' repository), _toc.yml, references.bib, vendor/,
tools/sphinx/, and chapters/ with each student .md and its .ipynb pair (jupytext). Unless --no-html is given the
student HTML is then built into _student/_build/html by tools/build_book.py (-W: any warning fails it).
tests/test_student.py checks that no solution content survives in any of these files.

Usage: make_student.py [--out DIR] [--chapters NAME,NAME] [--no-html] [--repository-url URL [--branch BRANCH]]
--chapters keeps only the named notebook chapters (plus the root page and the pages that are not notebooks),
for a quick look or a one-chapter handout.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COPIED = ["references.bib", "vendor", "tools/sphinx"]

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION(?:[ \t]*\(hint:[ \t]*(?P<hint>.*?)\))?[ \t]*$")
END = re.compile(r"^[ \t]*# END SOLUTION[ \t]*$")
FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,}|:{3,})[ \t]*(?:\{(?P<name>[^}\s]+)\})?[ \t]*(?P<arg>.*?)[ \t]*$")
STUB_TAG = "raises-exception"


class StudentError(ValueError):
    """A chapter cannot be turned into its student version (the message names the file and line)."""


@dataclass
class Stub:
    label: str          # the exercise it belongs to
    hints: list[str]
    source: str         # the stub cell's code


@dataclass
class Chapter:
    student: str                                  # the student .md
    exercises: list[str] = field(default_factory=list)
    solutions: list[str] = field(default_factory=list)
    stubs: list[Stub] = field(default_factory=list)


def is_notebook(text: str) -> bool:
    """A MyST notebook has the jupytext front matter (as in tests/conftest.py)."""
    parts = text.split("---", 2)
    return text.startswith("---") and len(parts) > 2 and "jupytext:" in parts[1] and "format_name: myst" in parts[1]


def _closing(lines: list[str], start: int, fence: str, where: str) -> int:
    """Index of the line closing a fence opened just before ``start`` (same character, at least as long)."""
    close = re.compile(r"^ {0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$")
    for j in range(start, len(lines)):
        if close.match(lines[j]):
            return j
    raise StudentError(f"{where}: the block opened with {fence} is never closed")


def _options(block: list[str]) -> dict:
    """The ``:key: value`` options at the top of a directive block."""
    opts = {}
    for line in block[1:-1]:
        m = re.match(r"^:([\w-]+):[ \t]*(.*)$", line)
        if not m:
            break
        opts[m.group(1)] = m.group(2).strip()
    return opts


def _cell_code(block: list[str]) -> tuple[int, list[str]]:
    """(offset of the first code line in the block, code lines) of a ``code-cell`` block."""
    i = 1
    if i < len(block) - 1 and block[i].strip() == "---":              # YAML options
        i += 1
        while i < len(block) - 1 and block[i].strip() != "---":
            i += 1
        i += 1
    else:
        while i < len(block) - 1 and re.match(r"^:[\w-]+:", block[i]):
            i += 1
    while i < len(block) - 1 and not block[i].strip():
        i += 1
    return i, block[i:-1]


def stub_code(code: list[str], label: str, where: str) -> tuple[list[str], list[str]] | None:
    """The stub of a code cell (answer regions replaced by a raise) and its hints; None when it has no region."""
    out, hints, inside = [], [], False
    for n, line in enumerate(code):
        m = BEGIN.match(line)
        if m:
            if inside:
                raise StudentError(f"{where}+{n}: BEGIN SOLUTION inside another answer region")
            hint = (m.group("hint") or "").strip()
            if not hint:
                raise StudentError(f"{where}+{n}: write a hint for the students: # BEGIN SOLUTION (hint: ...)")
            inside = True
            hints.append(hint)
            out.append(f"{m.group('indent')}raise NotImplementedError({f'{label}: {hint}'!r})")
        elif END.match(line):
            if not inside:
                raise StudentError(f"{where}+{n}: END SOLUTION without BEGIN SOLUTION")
            inside = False
        elif "BEGIN SOLUTION" in line or "END SOLUTION" in line:
            raise StudentError(f"{where}+{n}: malformed marker {line.strip()!r}; write '# BEGIN SOLUTION (hint: ...)' "
                               f"and '# END SOLUTION' on lines of their own")
        elif not inside:
            out.append(line)
    if inside:
        raise StudentError(f"{where}: BEGIN SOLUTION without END SOLUTION")
    return (out, hints) if hints else None


def split_chapter(text: str, name: str = "<chapter>", *, verify: bool = True) -> Chapter:
    """The student version of one chapter source (see the module docstring)."""
    lines = text.split("\n")
    notebook = is_notebook(text)
    out: list = []                       # str lines, or ("stubs", label) placeholders
    chapter = Chapter(student="")
    stubs: dict[str, list[Stub]] = {}
    solution = None                      # (label, line) while inside a gated solution
    exercise_start = None                # label while inside a gated exercise
    i = 0
    if notebook:                         # the front matter is copied as it is
        end = lines.index("---", 1)
        out.extend(lines[:end + 1])
        i = end + 1
    while i < len(lines):
        line = lines[i]
        where = f"{name}:{i + 1}"
        m = FENCE.match(line)
        if not m:
            blank_after_blank = not line.strip() and out and isinstance(out[-1], str) and not out[-1].strip()
            if solution is None and not blank_after_blank:
                out.append(line)
            i += 1
            continue
        j = _closing(lines, i + 1, m.group("fence"), where)
        block, kind, arg = lines[i:j + 1], m.group("name"), m.group("arg")
        i = j + 1
        if kind == "solution-start":
            if solution is not None:
                raise StudentError(f"{where}: solution-start inside the solution of {solution[0]}")
            if not arg:
                raise StudentError(f"{where}: solution-start needs the exercise label")
            solution = (arg, where)
            chapter.solutions.append(arg)
            stubs.setdefault(arg, [])
            continue
        if kind == "solution-end":
            if solution is None:
                raise StudentError(f"{where}: solution-end without solution-start")
            solution = None
            continue
        if kind == "solution":                                       # the non-gated form: text only
            if solution is not None:
                raise StudentError(f"{where}: a solution inside the solution of {solution[0]}")
            chapter.solutions.append(arg)
            continue
        if kind == "code-cell":
            code_at, code = _cell_code(block)
            if solution is None:
                if any(BEGIN.match(c) or END.match(c) for c in code):
                    raise StudentError(f"{where}: answer markers outside a solution block (they would be left "
                                       f"for the students)")
                out.extend(block)
                continue
            made = stub_code(code, solution[0], f"{name}:{i - len(block) + code_at + 1}")
            if made:
                if not notebook:
                    raise StudentError(f"{where}: a marked code cell in a page that is not a notebook")
                src, hints = made
                stubs[solution[0]].append(Stub(solution[0], hints, "\n".join(src)))
            continue
        if solution is not None:                                     # anything else inside a solution goes
            continue
        out.extend(block)
        if kind == "exercise":
            label = _options(block).get("label")
            if label:
                chapter.exercises.append(label)
                out.append(("stubs", label))
        elif kind == "exercise-start":
            exercise_start = _options(block).get("label")
        elif kind == "exercise-end" and exercise_start:
            chapter.exercises.append(exercise_start)
            out.append(("stubs", exercise_start))
            exercise_start = None
    if solution is not None:
        raise StudentError(f"{solution[1]}: solution-start of {solution[0]} without solution-end")
    unknown = [label for label in stubs if label not in chapter.exercises]
    if unknown:
        raise StudentError(f"{name}: solutions for exercises that are not in the chapter: {unknown}")
    student = []
    for item in out:
        if isinstance(item, tuple):
            for stub in stubs.get(item[1], []):
                chapter.stubs.append(stub)
                student += ["", f"```{{code-cell}} ipython3", f":tags: [{STUB_TAG}]", "", stub.source, "```"]
        else:
            student.append(item)
    chapter.student = "\n".join(student).rstrip("\n") + "\n"
    if verify:                       # parsed again, the student version must have no solution left
        again = split_chapter(chapter.student, f"{name} (student version)", verify=False)
        if again.solutions or again.stubs:
            raise StudentError(f"{name}: the student version still has solutions {again.solutions}")
    return chapter


# --------------------------------------------------------------------------------------------------------------
# The student book


def toc_pages(toc: dict) -> list[str]:
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [c["file"] for c in part.get("chapters", [])]
    return pages


def student_toc(toc: dict, keep) -> dict:
    out = {key: value for key, value in toc.items() if key != "parts"}
    parts = []
    for part in toc.get("parts", []):
        chapters = [c for c in part.get("chapters", []) if keep(c["file"])]
        if chapters:
            parts.append({**part, "chapters": chapters})
    out["parts"] = parts
    return out


def student_config(config: dict, repository_url: str | None, branch: str) -> dict:
    config = yaml.safe_load(yaml.safe_dump(config))                    # a deep copy
    config["title"] = f"{config.get('title', 'Book')} (student edition)"
    config.setdefault("sphinx", {}).setdefault("config", {})["hide_solutions"] = True
    if repository_url:
        config["repository"] = {"url": repository_url, "branch": branch}
    else:                      # the repository buttons would open the instructor's notebooks (with solutions)
        config.pop("repository", None)
        config.setdefault("html", {})["use_repository_button"] = False
        config["html"]["use_issues_button"] = False
        config["html"]["use_edit_page_button"] = False
        config["launch_buttons"] = {**config.get("launch_buttons", {}), "colab_url": "", "binderhub_url": "",
                                    "jupyterhub_url": "", "thebe": False}
    return config


ASSET = re.compile(r"^ {0,3}(?:`{3,}|:{3,})\{(?:include|literalinclude|image|figure)\}[ \t]+(?P<a>\S+)"
                   r"|!\[[^\]]*\]\((?P<b>[^)\s]+)")


def assets(text: str, page: str) -> list[Path]:
    """Files a page includes or shows (include, literalinclude, image, figure, ![](…)), relative to ROOT."""
    found = []
    for line in text.splitlines():
        for m in ASSET.finditer(line):
            ref = m.group("a") or m.group("b")
            if re.match(r"^[a-z]+:", ref):                                # a URL
                continue
            path = (ROOT / ref.lstrip("/")) if ref.startswith("/") else (ROOT / page).parent / ref
            path = path.resolve()
            if path.is_file() and ROOT in path.parents:
                found.append(path.relative_to(ROOT))
    return found


def _write(path: Path, text: str) -> None:
    """Write only when the content changes (keeps mtimes, so Sphinx re-reads only what changed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def generate(out: Path, chapters: list[str] | None = None, repository_url: str | None = None,
             branch: str = "main") -> dict[str, Chapter]:
    """Write the student book into ``out`` (its _build, the execution cache, is kept). Returns the chapters."""
    import jupytext

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    sources = {page: ROOT / f"{page}.md" for page in toc_pages(toc)}
    missing = [str(p.relative_to(ROOT)) for p in sources.values() if not p.exists()]
    if missing and not chapters:
        raise StudentError(f"_toc.yml lists pages that do not exist: {missing}")
    texts = {page: path.read_text() for page, path in sources.items() if path.exists()}
    if chapters:
        stems = {page.rsplit("/", 1)[-1]: page for page in texts}
        unknown = [c for c in chapters if c not in stems]
        if unknown:
            raise StudentError(f"--chapters: not in _toc.yml: {unknown} (known: {', '.join(sorted(stems))})")
        wanted = {stems[c] for c in chapters}
        keep = lambda page: page in texts and (page in wanted or page == toc["root"]  # noqa: E731
                                               or not is_notebook(texts[page]))
    else:
        keep = lambda page: True                                                                      # noqa: E731
    out.mkdir(parents=True, exist_ok=True)
    header = "# Generated by tools/make_student.py from the instructor's book: do not edit, regenerate.\n"
    config = student_config(yaml.safe_load((ROOT / "_config.yml").read_text()), repository_url, branch)
    if chapters:               # a subset: the kept pages may cross-reference chapters left out, which is expected
        sphinx_config = config.setdefault("sphinx", {}).setdefault("config", {})
        sphinx_config["suppress_warnings"] = [*sphinx_config.get("suppress_warnings", []), "ref.ref", "ref.doc",
                                              "myst.xref_missing"]
    _write(out / "_config.yml", header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    _write(out / "_toc.yml", header + yaml.safe_dump(student_toc(toc, keep), sort_keys=False, allow_unicode=True))
    for name in COPIED:
        src, dst = ROOT / name, out / name
        if src.is_dir():
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    done, written = {}, set()
    for page, text in texts.items():
        if not keep(page):
            continue
        chapter = split_chapter(text, f"{page}.md")
        done[page] = chapter
        md = out / f"{page}.md"
        _write(md, chapter.student)
        written.add(md)
        for asset in assets(chapter.student, page):                       # e.g. a results table it includes
            (out / asset).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / asset, out / asset)
            written.add(out / asset)
        if is_notebook(text):
            ipynb = md.with_suffix(".ipynb")
            _write(ipynb, jupytext.writes(jupytext.reads(chapter.student, fmt="md:myst"), fmt="ipynb"))
            written.add(ipynb)
    for stale in [p for p in (out / "chapters").rglob("*") if p.is_file() and p not in written]:
        stale.unlink()
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "_student"), help="where to write the student book (_student)")
    parser.add_argument("--chapters", default="", help="comma-separated chapter names to keep (default: all)")
    parser.add_argument("--no-html", action="store_true", help="write the sources and notebooks only")
    parser.add_argument("--repository-url", default=None,
                        help="the students' repository (holding this folder) for the launch and repository buttons")
    parser.add_argument("--branch", default="main", help="its branch (default main)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    chapters = [c.strip() for c in args.chapters.split(",") if c.strip()] or None
    try:
        done = generate(out, chapters, args.repository_url, args.branch)
    except StudentError as exc:
        print(f"make_student: {exc}", file=sys.stderr)
        return 2
    for page, ch in done.items():
        if ch.exercises:
            print(f"make_student: {page}: {len(ch.exercises)} exercises, {len(ch.solutions)} solutions removed, "
                  f"{len(ch.stubs)} code stubs", flush=True)
    print(f"make_student: student notebooks (.md and .ipynb) in {out / 'chapters'}", flush=True)
    if args.no_html:
        return 0
    rc = subprocess.call([sys.executable, str(ROOT / "tools" / "build_book.py"), str(out)])
    if rc == 0:
        print(f"make_student: student HTML in {out / '_build' / 'html'}", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
