"""The nbgrader course that `make student` / `make assignments` write next to the student edition (default _course/).

Why nbgrader (chapters/instructors.md says the same to instructors): it runs entirely on the instructor's machine or
JupyterHub, with no account anywhere; it grades written answers by hand in its formgrader, next to the autograded
ones; it keeps hidden tests in the instructor's gradebook and restores them at grading time; and its assignment is a
plain notebook (the grading information is cell metadata), so the same file opens in JupyterLab or Colab.

Layout (nbgrader's own):

    _course/nbgrader_config.py           the settings below (code and text stubs, execution timeout)
    _course/source/<chapter>/<chapter>.ipynb   the autograder's notebook: answers, public and hidden tests, points
    _course/release/<chapter>/<chapter>.ipynb  what students get (nbgrader generate_assignment): no answers, no
                                               hidden tests; the same file is the student edition's notebook
    _course/gradebook.db                 nbgrader's database (assignments, cells, points; later the grades)
    _course/README.md                    the instructions: generate, distribute, collect, grade
    _course/submitted/, autograded/, feedback/   made by nbgrader when the instructor collects and grades; this
                                               tool never writes or deletes anything there

This module knows nbgrader's cell metadata, configuration and commands; tools/make_student.py decides what goes
into each cell.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CONFIG = {
    # nbgrader puts these where an answer was removed
    "ClearSolutions.code_stub": {"python": "# Your answer here (the hint just above says where to start)\n"
                                           "raise NotImplementedError(\"your answer here\")"},
    "ClearSolutions.text_stub": "*Your answer here.*",
    # a chapter executes in well under a minute on a laptop CPU; allow ten per cell
    "Execute.timeout": 600,
}
PYTHON_KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def metadata(grade_id: str, *, solution: bool, grade: bool, points: float | None = None) -> dict:
    """nbgrader's cell metadata (schema 3): an answer cell (solution), a test cell (grade), or a manually graded
    written answer (both)."""
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return meta


def config_text(course_id: str) -> str:
    """The course's nbgrader_config.py."""
    lines = ["# Written by tools/make_student.py (filterbook); nbgrader reads it from this folder.",
             "c = get_config()  # noqa: F821",
             f"c.CourseDirectory.course_id = {course_id!r}"]
    lines += [f"c.{key} = {value!r}" for key, value in CONFIG.items()]
    return "\n".join(lines) + "\n"


def nbgrader(course: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the nbgrader command of this Python environment in the course folder (nbgrader calls `alembic` from the
    PATH to create its database: this environment's bin folder goes first)."""
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([os.path.join(bin_dir, "nbgrader"), *args], cwd=course, env=env, capture_output=True,
                          text=True)
    if check and (proc.returncode != 0 or "[ERROR]" in proc.stderr or "| ERROR]" in proc.stderr):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise RuntimeError(f"nbgrader {' '.join(args)} failed in {course}:\n{tail}")
    return proc


def generate(course: Path, assignment: str) -> Path:
    """``nbgrader generate_assignment``: source/<a>/<a>.ipynb -> release/<a>/<a>.ipynb, cells saved in the
    gradebook. Returns the released notebook."""
    nbgrader(course, "generate_assignment", assignment, "--force", "--create")
    released = course / "release" / assignment / f"{assignment}.ipynb"
    if not released.exists():
        raise RuntimeError(f"nbgrader generate_assignment wrote no {released}")
    return released


def autograde(course: Path, assignment: str) -> None:
    """``nbgrader autograde``: every submission in submitted/<student>/<assignment>/, students created as needed."""
    nbgrader(course, "autograde", assignment, "--create", "--force")


def scores(course: Path, assignment: str, student: str) -> dict[str, tuple[float, float, bool]]:
    """{grade_id: (score, max_score, needs_manual_grade)} of one graded submission, read from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        submission = gb.find_submission(assignment, student)
        return {g.name: (float(g.score), float(g.max_score), bool(g.needs_manual_grade))
                for nb in submission.notebooks for g in nb.grades}


def questions(notebook: dict) -> list[dict]:
    """The graded cells of a notebook (as JSON), in order: grade_id, points, and whether graded by hand."""
    out = []
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            out.append({"grade_id": meta["grade_id"], "points": meta.get("points", 0),
                        "manual": bool(meta.get("solution")), "cell_type": cell["cell_type"]})
    return out


def readme(course_id: str, chapters: dict[str, list[dict]], student_dir: Path) -> str:
    """The course folder's README.md: what is in it and the four steps (chapters/instructors.md explains more)."""
    rows = []
    for name, graded in chapters.items():
        auto = sum(q["points"] for q in graded if not q["manual"])
        manual = sum(q["points"] for q in graded if q["manual"])
        rows.append(f"| `{name}` | {len(graded)} | {auto:g} | {manual:g} |")
    return "\n".join([
        f"# {course_id}: the nbgrader course of filterbook",
        "",
        "Written by `make assignments` / `make student` (tools/make_student.py); regenerate rather than edit.",
        "The book's instructor page (*For instructors: assignments*) explains each step in full.",
        "",
        "| assignment | questions | autograded points | points graded by hand |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        "1. **Generate** (done): `source/` holds the autograder's notebooks (answers, hidden tests),",
        "   `release/` what students get, `gradebook.db` the cells and points.",
        f"2. **Distribute** `release/<chapter>/<chapter>.ipynb` (the same files are in `{student_dir.name}/chapters/`):",
        "   by your LMS, `nbgrader release_assignment` on JupyterHub, or a repository of the student edition",
        "   opened with its Colab button.",
        "3. **Collect** each student's notebook into `submitted/<student>/<chapter>/<chapter>.ipynb`",
        "   (`nbgrader collect` on JupyterHub, `nbgrader zip_collect` for an LMS download, or by hand).",
        "4. **Grade**: `nbgrader autograde <chapter>`, then the written answers in the formgrader",
        "   (`nbgrader formgrader`, or the Formgrader of JupyterLab), then `nbgrader export` for a CSV of grades",
        "   and `nbgrader generate_feedback <chapter>` for the students' feedback.",
        "",
        "Run the commands in this folder, with the Python environment that has filterbook and nbgrader",
        "(`make assignments` made it: `.venv/bin/nbgrader`).",
        "",
    ])


def load(path: Path) -> dict:
    """A notebook file as plain JSON (what :func:`questions` reads)."""
    return json.loads(path.read_text())
