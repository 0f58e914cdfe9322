"""The student edition (tools/make_student.py, `make student`): no solution survives, answer cells fail as they should,
the output folders are never destroyed. (tests/test_course.py grades the course that the same tool writes.)

The leak test finds the solution content of each instructor chapter on its own (a plain scan of the
solution-start ... solution-end regions, not make_student's parser), then looks for it in every student file:
the .md and .ipynb of every chapter, and the HTML of a one-chapter student book built here (and _student/_build/html
when `make student` has built it).
"""
from __future__ import annotations

import html
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import jupytext
import nbclient
import nbformat
import pytest
import yaml

import conftest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("make_student", ROOT / "tools" / "make_student.py")
ms = importlib.util.module_from_spec(spec)
sys.modules["make_student"] = ms                      # dataclasses look the module up while it loads
spec.loader.exec_module(ms)

TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
PAGES = [p for p in ms.toc_pages(TOC) if (ROOT / f"{p}.md").exists()]
NOTEBOOKS = [p for p in PAGES if ms.is_notebook((ROOT / f"{p}.md").read_text())]
APPENDIX = {c["file"] for part in TOC["parts"] if part.get("caption") == "Appendix" for c in part["chapters"]}
CHAPTERS = [p for p in NOTEBOOKS if p not in APPENDIX]
# chapters whose exercises include a code answer checked by filterlib.selfcheck
SELF_CHECKED = ["gd_gaussian", "one_neuron", "smoothness", "rate", "conv_model", "closeness", "sgd", "init"]
HTML_CHAPTER = "gd_gaussian"          # the quickest chapter to execute: the one-chapter student book uses it
HIDDEN_SEED = 271828                  # the hidden tests' seed of the student edition made here


def stem(page: str) -> str:
    return page.rsplit("/", 1)[-1]


# --------------------------------------------------------------------------------------------------------------
# The generated student edition (sources and notebooks only; a session-wide temporary folder)


@pytest.fixture(scope="session")
def student_dir(tmp_path_factory) -> Path:
    """The whole student edition (every page that exists: a page being written may be missing from a checkout)."""
    out = tmp_path_factory.mktemp("student")
    complete = len(PAGES) == len(ms.toc_pages(TOC))
    ms.generate(out, out.parent / f"{out.name}-course", None if complete else [stem(p) for p in NOTEBOOKS],
                seed=HIDDEN_SEED)
    return out


def student_page_path(root: Path, page: str) -> Path:
    """Where the student edition has a page: a replaced page (the instructors page) is its student page."""
    return root / f"{ms.REPLACED.get(page, (page,))[0]}.md"


def student_files(root: Path, page: str) -> list[Path]:
    files = [root / f"{page}.md"]
    if (root / f"{page}.ipynb").exists():
        files.append(root / f"{page}.ipynb")
    return files


# --------------------------------------------------------------------------------------------------------------
# Finding solution content, independently of make_student


TYPO = re.compile(r"['\"’‘“”–—\-…\.]")     # Sphinx's smart quotes and dashes change these in the HTML


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", TYPO.sub("", text.replace("\u00a0", " "))).strip()


def solution_content(text: str) -> tuple[set[str], set[str]]:
    """(code, prose) secrets of an instructor chapter: answer-region lines, unmarked solution cells and solution
    text, normalised; code lines of at least 10 characters, prose fragments of at least 25, and none that also
    appears in the chapter outside its solutions (or in the kept lines of its marked cells)."""
    code, prose, public = [], [], []
    in_solution, cell = False, None
    for line in text.splitlines():
        if not in_solution:
            if re.match(r"^`{3,}\{solution-start\}", line):
                in_solution = True
            else:
                public.append(line)
            continue
        if re.match(r"^`{3,}\{solution-end\}", line):
            in_solution = False
        elif cell is None and line.startswith("```{code-cell}"):
            cell = []
        elif cell is not None and line.strip() == "```":
            if any("# BEGIN SOLUTION" in c for c in cell):
                inside = False
                for c in cell:
                    if "# BEGIN SOLUTION" in c or "# END SOLUTION" in c:
                        inside = "BEGIN" in c
                        public.append(c)                       # the hint is shown to the students
                    else:
                        (code if inside else public).append(c)
            else:
                code.extend(cell)
            cell = None
        elif cell is not None:
            cell.append(line)
        else:
            prose.append(line)
    shown = norm("\n".join(public))
    code_secrets = {norm(c) for c in code if len(norm(c)) >= 10 and norm(c) not in shown}
    prose_secrets = {f for line in prose for f in fragments(line) if f not in shown}
    return code_secrets, prose_secrets


def fragments(line: str) -> list[str]:
    """The runs of plain prose (25 characters or more) of a Markdown line: what the HTML shows verbatim."""
    line = re.sub(r"\{[\w:-]+\}`([^`<]*?)\s*<[^>`]*>`", r"\1", line)      # a role with its own text shows the text
    return [norm(f) for f in re.split(r"[$`*{}\[\]\\|]", line) if len(norm(f)) >= 25]


def secrets_of(page: str) -> set[str]:
    code, prose = solution_content((ROOT / f"{page}.md").read_text())
    return code | prose


def text_of(path: Path) -> str:
    raw = path.read_text(errors="replace")
    if path.suffix == ".ipynb":
        nb = json.loads(raw)
        raw = "\n".join("".join(c["source"]) for c in nb["cells"])
    if path.suffix == ".html":
        raw = re.sub(r"<(script|style)\b.*?</\1>", " ", raw, flags=re.S)
        raw = html.unescape(re.sub(r"<[^>]+>", "", raw))
    return norm(raw)


def leaks(secrets: set[str], path: Path) -> list[str]:
    text = text_of(path)
    return sorted(s for s in secrets if s in text)


# --------------------------------------------------------------------------------------------------------------
# Structure of the instructor chapters


@pytest.mark.parametrize("page", CHAPTERS, ids=stem)
def test_every_chapter_ends_with_2_to_4_exercises_each_with_a_solution(page):
    chapter = ms.split_chapter((ROOT / f"{page}.md").read_text(), page)
    assert 2 <= len(chapter.exercises) <= 4, f"{page}: {len(chapter.exercises)} exercises"
    assert sorted(chapter.solutions) == sorted(chapter.exercises), f"{page}: exercises without a solution"
    text = (ROOT / f"{page}.md").read_text()
    assert text.rstrip().endswith("```{solution-end}\n```"), f"{page}: the exercises must end the chapter"


def code_questions(page: str) -> list:
    return [q for q in ms.split_chapter((ROOT / f"{page}.md").read_text(), page).questions if q.kind == "code"]


def test_chapters_with_self_checked_answers():
    have = {stem(p): code_questions(p) for p in NOTEBOOKS}
    missing = [c for c in SELF_CHECKED if not have.get(c)]
    assert not missing, f"chapters without a code answer: {missing}"
    for name, questions in have.items():
        for q in questions:
            assert q.checks and all(re.match(r"^selfcheck\.check_\w+\(", c) for c in q.checks), (name, q.label)


@pytest.mark.parametrize("page", NOTEBOOKS, ids=stem)
def test_hints_share_no_complete_line_with_their_answer(page):
    """A hint guides; it never states a line of the answer (whitespace ignored)."""
    squash = lambda text: re.sub(r"\s+", "", text)  # noqa: E731
    for label, source in marked_cells(page):
        hints, answer, inside = [], [], False
        for line in source.splitlines():
            m = ms.BEGIN.match(line)
            if m:
                hints.append(squash(m.group("hint") or ""))
                inside = True
            elif ms.END.match(line):
                inside = False
            elif inside and len(squash(line)) >= 6:
                answer.append(squash(line))
        assert hints and answer, (page, label)
        for hint in hints:
            shared = [line for line in answer if line in hint]
            assert not shared, f"{page}/{label}: the hint gives away the answer line(s) {shared}"


def _namespace():
    import numpy as np
    import torch

    import filterlib as fl
    from filterlib import distributions, initialization, selfcheck, theory
    return {"np": np, "torch": torch, "fl": fl, "selfcheck": selfcheck, "distributions": distributions,
            "initialization": initialization, "theory": theory}


def marked_cells(page: str) -> list[tuple[str, str]]:
    """(exercise label, instructor source) of every marked code cell of a chapter."""
    out, label, cell = [], None, None
    for line in (ROOT / f"{page}.md").read_text().splitlines():
        m = re.match(r"^`{3,}\{solution-start\}\s*(\S+)", line)
        if m:
            label = m.group(1)
        elif line.startswith("```{code-cell}") and label:
            cell = []
        elif cell is not None and line.strip() == "```":
            if any("# BEGIN SOLUTION" in c for c in cell):
                out.append((label, "\n".join(cell)))
            cell = None
        elif cell is not None:
            cell.append(line)
        elif re.match(r"^`{3,}\{solution-end\}", line):
            label = None
    return out


@pytest.mark.parametrize("page", [p for p in NOTEBOOKS if marked_cells(p)], ids=stem)
def test_instructor_answers_pass_their_checks(page):
    for label, source in marked_cells(page):
        buffer = io.StringIO()
        with redirect_stdout(buffer):
            exec(compile(source, f"{page}:{label}", "exec"), _namespace())
        assert re.search(r"^✓ check_\w+: passed \d+ cases", buffer.getvalue(), re.M), (label, buffer.getvalue())


def answer_cells(nb) -> list:
    """The code answer cells of a notebook (nbgrader solution cells that are not graded themselves)."""
    return [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")
            and not c.metadata["nbgrader"].get("grade")]


STUB_ERROR = "your answer here"     # what nbgrader's code stub (tools/course.py) raises


@pytest.mark.parametrize("page", [p for p in NOTEBOOKS if marked_cells(p)], ids=stem)
def test_answer_cells_show_the_hint_and_their_function_raises_not_implemented(student_dir, page):
    nb = nbformat.read(student_dir / f"{page}.ipynb", as_version=4)
    questions = code_questions(page)
    cells = answer_cells(nb)
    assert [c.metadata["nbgrader"]["grade_id"] for c in cells] == [q.answer_id for q in questions]
    for cell, q in zip(cells, questions):
        comment = " ".join(line.strip().lstrip("#").strip() for line in cell.source.splitlines()
                           if line.strip().startswith("#") and "Your answer here" not in line)
        assert f"Hint: {q.hints[0]}" in comment, (q.label, comment)
        assert all(len(line) <= 88 for line in cell.source.splitlines() if line.strip().startswith("# Hint")
                   or line.strip().startswith("#  ")), q.label
        namespace = _namespace()
        exec(compile(cell.source, f"{page}:{q.label} (answer cell)", "exec"), namespace)
        function = re.search(r"^def (\w+)\(", cell.source, re.M).group(1)
        with pytest.raises(NotImplementedError, match=f"^{STUB_ERROR}$"):
            namespace[function](*[None] * namespace[function].__code__.co_argcount)


# --------------------------------------------------------------------------------------------------------------
# The leak test


def test_leak_finder_finds_the_solutions_in_the_instructor_files():
    """Not vacuous: every chapter's secrets are found in its own instructor .md (and .ipynb, for the chapters
    with self-checked answers: another chapter's pair may be mid-edit)."""
    for page in CHAPTERS:
        secrets = secrets_of(page)
        assert secrets, f"{page}: no solution content found"
        for path in student_files(ROOT, page)[:2 if stem(page) in SELF_CHECKED else 1]:
            assert set(leaks(secrets, path)) == secrets, f"{path.name}: some solution content not found"


@pytest.mark.parametrize("page", NOTEBOOKS, ids=stem)
def test_no_solution_content_in_student_notebooks(student_dir, page):
    secrets = secrets_of(page)
    for path in student_files(student_dir, page):
        assert path.exists(), f"{path} was not written"
        found = leaks(secrets, path)
        assert not found, f"{path.name} leaks solution content: {found[:5]}"
        raw = path.read_text()
        for word in ("solution-start", "solution-end", "{solution}", "BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS",
                     f"seed={HIDDEN_SEED}"):
            assert word not in raw, f"{path.name} contains {word!r}"


def test_the_instructors_page_is_replaced_by_a_student_page(student_dir):
    """Its worked example (an answer region) and its instructor-edition sentences appear in no student file."""
    secrets = secrets_of("chapters/instructors")
    assert secrets and norm("return 0.5 * ((fl.forward(w, Z) - fl.forward(w_star, Z)) ** 2).mean()") in secrets
    assert not (student_dir / "chapters" / "instructors.md").exists()
    page = student_dir / "chapters" / "exercises.md"
    assert page.read_text() == (ROOT / "tools" / "student" / "exercises.md").read_text()
    files = [p for p in student_dir.rglob("*") if p.suffix in (".md", ".ipynb") and p.is_file()]
    for path in files:
        assert not leaks(secrets, path), path
        assert "instructor edition" not in path.read_text().lower(), path
        assert "{doc}`instructors`" not in path.read_text(), path


@pytest.mark.parametrize("page", [p for p in PAGES if p not in NOTEBOOKS], ids=stem)
def test_pages_without_solutions_are_copied_with_their_student_text(student_dir, page):
    """The other pages have no solution to remove; only their instructor-edition lines go."""
    source = (ROOT / f"{page}.md").read_text()
    assert not ms.split_chapter(source, page).solutions, f"{page} is not a notebook chapter but has solutions"
    if page in ms.REPLACED:
        return
    assert student_page_path(student_dir, page).read_text().strip() == ms.student_page(source).strip()


def test_a_subset_edition_turns_proof_refs_to_pages_left_out_into_plain_refs():
    """sphinx-proof's missing-label warning has no type to suppress: a subset edition must not emit one."""
    text = ("see {prf:ref}`Theorem 3.1 <thm-gone>`, {prf:ref}`def-gone` and "
            "{prf:ref}`the lemma <lem-here>`, {prf:ref}`lem-here`\n")
    out = ms.detach_proof_refs(text, {"lem-here"})
    assert out == ("see {ref}`Theorem 3.1 <thm-gone>`, {ref}`def-gone` and "
                   "{prf:ref}`the lemma <lem-here>`, {prf:ref}`lem-here`\n")
    labels = set(ms.LABEL.findall((ROOT / "chapters" / "one_neuron.md").read_text()))
    assert "thm-one-neuron-global" in labels


def test_edition_markers():
    text = ("a\n<!-- student-edition: see {doc}`instructors` -->\n<!-- instructor-edition -->\nsecret\n"
            "<!-- /instructor-edition -->\nb\n")
    assert ms.student_page(text) == "a\nsee {doc}`exercises`\nb\n"
    intro = (ROOT / "chapters" / "intro.md").read_text()
    assert "<!-- instructor-edition -->" in intro and "make student" not in ms.student_page(intro)


@pytest.mark.parametrize("page", NOTEBOOKS, ids=stem)
def test_student_ipynb_is_the_pair_of_the_student_md(student_dir, page):
    md, ipynb = jupytext.read(student_dir / f"{page}.md"), jupytext.read(student_dir / f"{page}.ipynb")
    strip = lambda nb: [(c.cell_type, c.source.strip(), c.metadata.get("tags", [])) for c in nb.cells]  # noqa: E731
    assert strip(md) == strip(ipynb)
    tagged = [c.metadata["nbgrader"]["grade_id"] for c in ipynb.cells if ms.STUB_TAG in c.metadata.get("tags", [])]
    questions = ms.split_chapter((ROOT / f"{page}.md").read_text(), page).questions
    assert tagged == [i for q in questions if q.kind == "code" for i in (q.answer_id, q.check_id)]
    written = [c.metadata["nbgrader"]["grade_id"] for c in ipynb.cells if c.cell_type == "markdown"
               and c.metadata.get("nbgrader", {}).get("solution")]
    assert written == [q.answer_id for q in questions if q.kind == "written"]
    assert all(c.source == "*Your answer here.*" for c in ipynb.cells if c.cell_type == "markdown"
               and c.metadata.get("nbgrader", {}).get("solution"))


def test_student_config_has_no_instructor_links(student_dir):
    config = yaml.safe_load((student_dir / "_config.yml").read_text())
    assert config["title"].endswith("(student edition)")
    assert config["sphinx"]["config"]["hide_solutions"] is True
    assert "repository" not in config and not config["launch_buttons"]["colab_url"]
    assert ms.toc_pages(yaml.safe_load((student_dir / "_toc.yml").read_text())) == \
        [ms.REPLACED.get(p, (p,))[0] for p in PAGES]


# --------------------------------------------------------------------------------------------------------------
# The student HTML: a one-chapter student book built here, and _student/_build/html if `make student` built it


@pytest.fixture(scope="session")
def student_html(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student_book")
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "make_student.py"), "--out", str(out),
                           "--course", str(out.parent / f"{out.name}-course"), "--chapters", HTML_CHAPTER],
                          cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, FILTERLIB_DEVICE=os.environ.get("FILTERLIB_DEVICE", "cpu")))
    if proc.returncode != 0:
        pytest.fail("the student book build failed:\n" + (proc.stdout + proc.stderr)[-6000:])
    return out / "_build" / "html"


def html_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".html", ".md", ".ipynb", ".txt", ".js")
                  and "_static" not in p.relative_to(root).parts)


def test_student_html_has_no_solution(student_html):
    page = next(p for p in PAGES if stem(p) == HTML_CHAPTER)
    secrets = secrets_of(page)
    files = html_files(student_html)
    assert any(p.name == f"{HTML_CHAPTER}.html" for p in files)
    for path in files:
        found = leaks(secrets, path)
        assert not found, f"{path.relative_to(student_html)} leaks solution content: {found[:5]}"
    text = (student_html / "chapters" / f"{HTML_CHAPTER}.html").read_text()
    assert 'class="solution' not in text and "colab.research.google.com" not in text
    assert "github.com/filterbook" not in text


def test_student_html_shows_exercises_answer_cells_and_the_stub_error(student_html):
    """Not vacuous: the exercise text, the hints and the stub's error are found by the same normalisation."""
    page = next(p for p in PAGES if stem(p) == HTML_CHAPTER)
    questions = ms.split_chapter((ROOT / f"{page}.md").read_text(), page).questions
    text = text_of(student_html / "chapters" / f"{HTML_CHAPTER}.html")
    assert any(q.kind == "code" for q in questions) and any(q.kind == "written" for q in questions)
    assert text.count(norm(f"NotImplementedError: {STUB_ERROR}")) == sum(q.kind == "code" for q in questions)
    assert text.count(norm("Your answer here")) >= len(questions)
    lines = (ROOT / f"{page}.md").read_text().splitlines()
    for q in questions:
        start = lines.index(f":label: {q.label}")
        statement = [f for line in lines[start + 1:lines.index("```", start)] for f in fragments(line)]
        assert statement and all(f in text for f in statement), [f for f in statement if f not in text]
        for hint in q.hints:
            assert all(norm(word) in text for word in hint.split()), hint


# --------------------------------------------------------------------------------------------------------------
# Student notebooks execute up to the first stub, and every stub fails with its own message
#
# A student notebook is its instructor chapter with the solution cells removed and a stub put after each exercise.
# When its code cells are the instructor's first K code cells followed by stubs only, and each stub is
# self-contained (it reads no name that it does not bind itself), running it is running those K cells on a fresh
# kernel, which the book build did (conftest.executed_chapter, with execution counts 1..K), then the stubs, whose
# behaviour does not depend on the kernel's earlier names: the test takes the K cells' outputs from the build and
# runs only the stubs, on a fresh kernel. A notebook of any other shape is executed whole, as before.


def names_read(source: str) -> set[str] | None:
    """The names a cell reads from the notebook's namespace without binding them itself (builtins aside): used at
    its top level, or as globals in its functions and classes, and not assigned, imported or defined at its top
    level. None when the source is not plain Python (e.g. IPython magics)."""
    import builtins
    import symtable

    try:
        top = symtable.symtable(source, "<cell>", "exec")
    except SyntaxError:
        return None
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    read = {s.get_name() for s in top.get_symbols() if s.is_referenced()}
    tables = list(top.get_children())
    while tables:
        table = tables.pop()
        read |= {s.get_name() for s in table.get_symbols() if s.is_referenced() and s.is_global()}
        tables += table.get_children()
    return read - bound - set(dir(builtins))


def test_names_read_finds_what_a_cell_takes_from_the_kernel():
    assert names_read("import torch\nx = torch.ones(2)\nprint(len(x))") == set()
    assert names_read("def f(a):\n    return a + Z.sum()\n\nprint(f(1))") == {"Z"}
    assert names_read("def f(a):\n    b = a\n    return [c for c in b]\n\nclass K:\n    y = w_star\n") == {"w_star"}
    assert names_read("print(k)\nfrom filterlib import selfcheck\nselfcheck.check_forward(g)") == {"k", "g"}
    assert names_read("%time x = 1") is None


def stubs_after_the_build(student_nb, executed) -> int | None:
    """K when the student notebook's code cells are the executed instructor notebook's first K code cells (same
    source and tags) followed only by stubs (answer and check cells) that, together, are self-contained; None
    otherwise."""
    cells, instructor = conftest.code_cells(student_nb), conftest.code_cells(executed)
    k = next((i for i, c in enumerate(cells) if ms.STUB_TAG in c.metadata.get("tags", [])), len(cells))
    key = lambda c: (c.source, c.metadata.get("tags", []))  # noqa: E731
    if [key(c) for c in cells[:k]] != [key(c) for c in instructor[:k]]:
        return None
    if any(ms.STUB_TAG not in c.metadata.get("tags", []) for c in cells[k:]):
        return None
    return k if names_read("\n".join(c.source for c in cells[k:])) == set() else None


def test_stubs_after_the_build_only_when_the_student_notebook_is_built_prefix_plus_self_contained_stubs():
    code = nbformat.v4.new_code_cell
    stub = lambda src: code(src, metadata={"tags": [ms.STUB_TAG]})  # noqa: E731
    built = nbformat.v4.new_notebook(cells=[code("x = 1"), code("print(x)"), code("solution = 2")])
    student = lambda *cells: nbformat.v4.new_notebook(cells=list(cells))  # noqa: E731
    own = "def f():\n    raise NotImplementedError('ex: h')\n\nf()"
    assert stubs_after_the_build(student(code("x = 1"), code("print(x)"), stub(own)), built) == 2
    assert stubs_after_the_build(student(code("x = 1"), code("print(x)")), built) == 2
    assert stubs_after_the_build(student(code("x = 1"), stub(own)), built) == 1
    assert stubs_after_the_build(student(code("x = 2"), code("print(x)"), stub(own)), built) is None   # not the build's
    assert stubs_after_the_build(student(code("x = 1"), code("print(x)"), stub("f(x)")), built) is None  # reads x
    assert stubs_after_the_build(student(code("x = 1"), stub(own), code("print(x)")), built) is None  # a cell after
    assert stubs_after_the_build(student(code("x = 1"), stub("def g():\n    return 1"), stub("g()")), built) == 1


def run_student_notebook(nb, path: Path, executed) -> str:
    """Fill the outputs of a student notebook (in place) as a fresh-kernel run in folder ``path`` would; says how."""
    k = stubs_after_the_build(nb, executed)
    run = lambda notebook: nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",  # noqa: E731
                                                   resources={"metadata": {"path": str(path)}}).execute()
    if k is None:
        run(nb)
        return "executed whole"
    cells, built = conftest.code_cells(nb), conftest.code_cells(executed)
    assert [c.get("execution_count") for c in built[:k]] == list(range(1, k + 1))     # first, on a fresh kernel
    for cell, done in zip(cells[:k], built[:k]):
        cell.outputs, cell.execution_count = done.outputs, done.execution_count
    if cells[k:]:
        run(nbformat.v4.new_notebook(metadata=nb.metadata, cells=cells[k:]))          # the same cell objects
    return f"{k} cells from the build, {len(cells) - k} stubs executed"


@pytest.mark.book
@pytest.mark.parametrize("page", NOTEBOOKS, ids=stem)
def test_student_notebook_runs_up_to_the_first_stub(student_dir, executed_chapter, page):
    """No error before the exercises; each answer cell defines its function, and its check cell stops with the
    stub's NotImplementedError."""
    nb = jupytext.read(student_dir / f"{page}.md")
    os.environ["FILTERLIB_PROGRESS"] = "0"
    how = run_student_notebook(nb, (student_dir / page).parent,          # answer and check cells: raises-exception
                               executed_chapter(ROOT / f"{page}.md"))
    questions = iter(code_questions(page))
    expect = None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        stderr = [o for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr"]
        assert not stderr, (page, how, cell.source[:200], stderr)
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if ms.STUB_TAG in cell.metadata.get("tags", []):
            if expect is None:
                expect = next(questions)
                assert grade_id == expect.answer_id and not errors, (page, how, grade_id, errors)
            else:
                assert grade_id == expect.check_id, (page, grade_id)
                assert [(e["ename"], e["evalue"]) for e in errors] == [("NotImplementedError", STUB_ERROR)], \
                    (page, how, grade_id, errors)
                expect = None
        else:
            assert not errors, (page, how, "an error before or between the exercises", cell.source[:200], errors)
    assert expect is None and next(questions, None) is None


# --------------------------------------------------------------------------------------------------------------
# The generator on small examples


EXAMPLE = '''---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A chapter

```{code-cell} ipython3
import torch
```

```{exercise} First
:label: ex-a

Write f.
```

```{exercise} Second
:label: ex-b

Explain.
```

Some text between.

```{solution-start} ex-a
:class: dropdown
```

```{code-cell} ipython3
:tags: [hide-input]

from filterlib import selfcheck

def f(x):
    """doc"""
    if x:
        # BEGIN SOLUTION (hint: use (x + 1))
        y = x + 1
        return y
        # END SOLUTION
    # BEGIN SOLUTION (hint: the other branch)
    return 0
    # END SOLUTION

selfcheck.check_forward(f)
```

```{code-cell} ipython3
secret_helper_value = 42
```

The secret explanation of the first answer.

```{solution-end}
```

```{solution-start} ex-b
:class: dropdown
```

The secret explanation of the second answer.

```{solution-end}
```

````md
```{solution-start} ex-shown
```
````
'''


def test_split_chapter_on_an_example():
    chapter = ms.split_chapter(EXAMPLE.replace("Write f.\n```\n", "Write f.\n```\n\n% points: 5\n"), "example.md",
                               seed=7)
    assert chapter.exercises == ["ex-a", "ex-b"] and chapter.solutions == ["ex-a", "ex-b"]
    assert [(q.label, q.kind, q.points) for q in chapter.questions] == [("ex-a", "code", 5), ("ex-b", "written", 1)]
    assert chapter.questions[0].hints == ["use (x + 1)", "the other branch"]
    assert chapter.questions[0].checks == ["selfcheck.check_forward(f)"]
    text = chapter.source
    assert "secret_helper_value" not in text and "The secret explanation of the first answer." not in text
    assert "% points: 5" not in text and "Some text between." in text
    assert "```{solution-start} ex-shown" in text                                   # example fences are kept
    nb = jupytext.reads(text, fmt="md:myst")
    graded = [(c.cell_type, c.metadata["nbgrader"]) for c in nb.cells if "nbgrader" in c.metadata]
    assert [(kind, m["grade_id"], m["solution"], m["grade"], m.get("points")) for kind, m in graded] == [
        ("code", "ex-a-answer", True, False, None), ("code", "ex-a-check", False, True, 5),
        ("markdown", "ex-b-answer", True, True, 1)]
    answer, check, written = [c for c in nb.cells if "nbgrader" in c.metadata]
    assert "        # Hint: use (x + 1)\n        ### BEGIN SOLUTION\n        y = x + 1" in answer.source
    assert answer.source.splitlines()[0] == "from filterlib import selfcheck" and "check_forward" not in answer.source
    assert check.source.splitlines() == ["selfcheck.check_forward(f)", "### BEGIN HIDDEN TESTS",
                                         "selfcheck.check_forward(f, seed=7)", "### END HIDDEN TESTS"]
    assert written.source == "The secret explanation of the second answer."
    assert answer.metadata["tags"] == check.metadata["tags"] == [ms.STUB_TAG]           # hide-input is not kept
    # the answer cells come right after their exercise, before the next exercise
    assert text.index("Write f.") < text.index("### BEGIN SOLUTION") < text.index("Explain.")
    assert text.index("Explain.") < text.index("The secret explanation of the second answer.") < \
        text.index("Some text between.")


def test_nbgrader_releases_the_example_without_answers(tmp_path):
    """The real nbgrader (tools/course.py) on the example: stubs at the regions' indentation, no answer left."""
    chapter = ms.split_chapter(EXAMPLE, "example.md", seed=7)
    nb = jupytext.reads(chapter.source, fmt="md:myst")
    nb.metadata["kernelspec"] = ms.nbg.PYTHON_KERNEL
    (tmp_path / "source" / "example").mkdir(parents=True)
    nbformat.write(nb, tmp_path / "source" / "example" / "example.ipynb")
    (tmp_path / "nbgrader_config.py").write_text(ms.nbg.config_text("test"))
    released = nbformat.read(ms.nbg.generate(tmp_path, "example"), as_version=4)
    text = "\n".join(c.source for c in released.cells)
    for secret in ("y = x + 1", "return 0", "secret", "seed=7", "HIDDEN", "SOLUTION"):
        assert secret not in text, secret
    answer = next(c.source for c in released.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex-a-answer")
    lines = answer.splitlines()
    assert '        raise NotImplementedError("your answer here")' in lines
    assert '    raise NotImplementedError("your answer here")' in lines
    assert "        # Hint: use (x + 1)" in lines and "    # Hint: the other branch" in lines
    check = next(c for c in released.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex-a-check")
    assert check.source == "selfcheck.check_forward(f)" and check.metadata["editable"] is False
    assert ms.nbg.questions(json.loads(nbformat.writes(released))) == [
        {"grade_id": "ex-a-check", "points": 2, "manual": False, "cell_type": "code"},
        {"grade_id": "ex-b-answer", "points": 1, "manual": True, "cell_type": "markdown"}]


@pytest.mark.parametrize("old, new, message", [
    ("# BEGIN SOLUTION (hint: use (x + 1))", "# BEGIN SOLUTION", "write a hint"),
    ("# BEGIN SOLUTION (hint: use (x + 1))", "# END SOLUTION", "END SOLUTION without BEGIN"),
    ("        return y\n        # END SOLUTION", "        return y", "BEGIN SOLUTION inside another"),
    ("    return 0\n    # END SOLUTION", "    return 0\n    # END SOLUTION here", "malformed marker"),
    ("The secret explanation of the first answer.\n\n```{solution-end}\n```", "", "solution-start inside"),
    ("selfcheck.check_forward(f)\n", "print(f(1))\n", "needs its check call"),
    ("```{code-cell} ipython3\nsecret_helper_value = 42\n```",
     "```{code-cell} ipython3\ndef g():\n    # BEGIN SOLUTION (hint: h)\n    return 1\n    # END SOLUTION\n\n"
     "selfcheck.check_forward(g)\n```", "a second marked cell"),
])
def test_split_chapter_rejects_broken_markup(old, new, message):
    broken = EXAMPLE.replace(old, new, 1)
    assert broken != EXAMPLE
    with pytest.raises(ms.StudentError, match=message):
        ms.split_chapter(broken, "example.md")


def test_split_chapter_rejects_markers_outside_solutions_and_unknown_exercises():
    outside = EXAMPLE.replace("import torch\n", "import torch\n# BEGIN SOLUTION (hint: h)\nx = 1\n# END SOLUTION\n", 1)
    with pytest.raises(ms.StudentError, match="outside a solution"):
        ms.split_chapter(outside, "example.md")
    with pytest.raises(ms.StudentError, match="not in the chapter"):
        ms.split_chapter(EXAMPLE.replace(":label: ex-b", ":label: ex-c"), "example.md")
    with pytest.raises(ms.StudentError, match="without solution-end"):
        ms.split_chapter(EXAMPLE.replace("The secret explanation of the second answer.\n\n```{solution-end}\n```", ""),
                         "example.md")


def test_repository_url_option_points_the_buttons_at_the_students_repository(tmp_path):
    out = tmp_path / "student"
    rc = ms.main(["--out", str(out), "--course", str(tmp_path / "course"), "--chapters", "gd_gaussian", "--no-html",
                  "--repository-url", "https://github.com/someone/course"])
    assert rc == 0
    config = yaml.safe_load((out / "_config.yml").read_text())
    assert config["repository"]["url"] == "https://github.com/someone/course"
    assert config["launch_buttons"]["colab_url"]
    toc = ms.toc_pages(yaml.safe_load((out / "_toc.yml").read_text()))
    assert "chapters/gd_gaussian" in toc and "chapters/rate" not in toc
    assert (out / "chapters" / "gd_gaussian.ipynb").exists() and not (out / "chapters" / "rate.md").exists()
    released = tmp_path / "course" / "release" / "gd_gaussian" / "gd_gaussian.ipynb"
    assert released.read_bytes() == (out / "chapters" / "gd_gaussian.ipynb").read_bytes()


def test_the_instructor_page_example_is_a_working_exercise():
    """The marked-cell example of chapters/instructors.md passes its check; its answer region is one question."""
    page = (ROOT / "chapters" / "instructors.md").read_text()
    example = re.search(r"````md\n(.*?)\n````", page, re.S).group(1)
    header = EXAMPLE.split("# A chapter")[0]
    chapter = ms.split_chapter(header + example + "\n", "instructors-example")
    assert chapter.exercises == ["ex-my-loss"] and [q.kind for q in chapter.questions] == ["code"]
    assert chapter.questions[0].checks == ["selfcheck.check_loss(my_loss)"]
    source = example.split("```{code-cell} ipython3\n")[1].split("\n```")[0]
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        exec(compile(source, "instructors-example", "exec"), _namespace())
    assert buffer.getvalue().startswith("✓ check_loss: passed")


# --------------------------------------------------------------------------------------------------------------
# make_student never destroys what it did not make


def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


def run_make_student(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "make_student.py"), "--no-html", *args], cwd=cwd,
                          capture_output=True, text=True)


@pytest.mark.parametrize("option", ["--out", "--course"])
def test_make_student_refuses_the_project_root(option):
    """`--out .` (or --course .) in the project: one line, exit code 2, nothing written or changed."""
    before = git_status()
    stamps = sorted(ROOT.glob(".filterbook-*"))
    proc = run_make_student(option, ".", "--chapters", "gd_gaussian")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and option in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert git_status() == before
    assert sorted(ROOT.glob(".filterbook-*")) == stamps


@pytest.mark.parametrize("option", ["--out", "--course"])
def test_make_student_refuses_a_folder_it_did_not_make(tmp_path, option):
    mine = tmp_path / "mine"
    (mine / "vendor").mkdir(parents=True)
    (mine / "vendor" / "important.txt").write_text("keep me")
    (mine / "_config.yml").write_text("title: my own book\n")
    other = {"--out": "--course", "--course": "--out"}[option]
    proc = run_make_student(option, str(mine), other, str(tmp_path / "other"), "--chapters", "gd_gaussian")
    assert proc.returncode == 2 and option in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*")) == ["_config.yml", "vendor",
                                                                               "vendor/important.txt"]
    assert (mine / "vendor" / "important.txt").read_text() == "keep me"
    assert (mine / "_config.yml").read_text() == "title: my own book\n"


def test_make_student_regenerates_its_own_folders_and_keeps_everything_else(tmp_path):
    out, course = tmp_path / "student", tmp_path / "course"
    assert run_make_student("--out", str(out), "--course", str(course), "--chapters", "init").returncode == 0
    assert (out / ".filterbook-student").is_file() and (course / ".filterbook-course").is_file()
    (out / "notes.txt").write_text("the student's own file")
    graded = course / "submitted" / "someone" / "init" / "init.ipynb"
    graded.parent.mkdir(parents=True)
    graded.write_text("{}")
    seed = (course / "hidden_seed.txt").read_text()
    proc = run_make_student("--out", str(out), "--course", str(course), "--chapters", "sgd")
    assert proc.returncode == 0, proc.stderr
    assert (out / "chapters" / "sgd.ipynb").exists() and not (out / "chapters" / "init.ipynb").exists()
    assert (out / "notes.txt").read_text() == "the student's own file"
    assert graded.read_text() == "{}" and (course / "release" / "init" / "init.ipynb").exists()
    assert (course / "hidden_seed.txt").read_text() == seed                 # the hidden tests stay the same
    assert (course / "release" / "sgd" / "init.ipynb").exists() is False
