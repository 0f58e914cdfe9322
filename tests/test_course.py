"""The nbgrader course of tools/make_student.py, graded end to end by the real grader (`nbgrader autograde`).

For two chapters the course is generated, then three submissions per chapter are graded: the instructor's answers
(every answer cell as in the source notebook), the untouched student notebook, and the answers with one code
answer wrong. The scores are read back from nbgrader's gradebook.
"""
from __future__ import annotations

import importlib.util
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("make_student", ROOT / "tools" / "make_student.py")
ms = importlib.util.module_from_spec(spec)
sys.modules.setdefault("make_student", ms)
spec.loader.exec_module(ms)
nbg = ms.nbg

# gd_gaussian: two code questions and two written ones; init: one of each (both chapters run in seconds)
CHAPTERS = ["gd_gaussian", "init"]
WRONG = {"gd_gaussian": "ex-gd-gaussian-forward", "init": "ex-init-ball"}
SEED = 4242


def graded(nb) -> dict[str, nbformat.NotebookNode]:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def solved(release, source):
    """The released notebook with every answer cell (code and written) filled in as in the source notebook."""
    nb = nbformat.from_dict(release)
    answers = graded(source)
    for grade_id, cell in graded(nb).items():
        if cell.metadata["nbgrader"].get("solution"):
            cell.source = answers[grade_id].source
    return nb


def made_wrong(nb, label: str):
    """One code answer wrong: its function's result doubled (the other answers untouched)."""
    cell = graded(nb)[f"{label}-answer"]
    name = re.search(r"^def (\w+)\(", cell.source, re.M).group(1)
    cell.source += f"\n\n_right = {name}\n{name} = lambda *args: 2 * _right(*args)\n"
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The course, three submissions per chapter, and one autograde run per chapter (timed)."""
    base = tmp_path_factory.mktemp("course")
    root = base / "course"
    rc = ms.main(["--out", str(base / "student"), "--course", str(root), "--chapters", ",".join(CHAPTERS),
                  "--no-html", "--hidden-seed", str(SEED)])
    assert rc == 0
    seconds = {}
    for name in CHAPTERS:
        release = nbformat.read(root / "release" / name / f"{name}.ipynb", as_version=4)
        source = nbformat.read(root / "source" / name / f"{name}.ipynb", as_version=4)
        submissions = {"untouched": release, "solved": solved(release, source),
                       "one-wrong": made_wrong(solved(release, source), WRONG[name])}
        for student, nb in submissions.items():
            path = root / "submitted" / student / name / f"{name}.ipynb"
            path.parent.mkdir(parents=True)
            nbformat.write(nb, path)
        start = time.perf_counter()
        nbg.autograde(root, name)
        seconds[name] = time.perf_counter() - start
    print(f"autograde, 3 submissions each: {seconds}")
    return root


def autograded(scores: dict) -> dict:
    return {grade_id: s for grade_id, s in scores.items() if not grade_id.endswith("-answer")}


@pytest.mark.parametrize("name", CHAPTERS)
def test_the_questions_and_points_of_each_assignment(course, name):
    chapter = ms.split_chapter((ROOT / "chapters" / f"{name}.md").read_text(), name)
    released = nbg.load(course / "release" / name / f"{name}.ipynb")
    expected = [{"grade_id": q.check_id if q.kind == "code" else q.answer_id, "points": q.points,
                 "manual": q.kind == "written", "cell_type": "code" if q.kind == "code" else "markdown"}
                for q in chapter.questions]
    assert nbg.questions(released) == expected
    assert {q.kind for q in chapter.questions} == {"code", "written"}
    assert f"| `{name}` |" in (course / "README.md").read_text()


@pytest.mark.parametrize("name", CHAPTERS)
def test_the_instructor_answers_score_every_autograded_point(course, name):
    scores = nbg.scores(course, name, "solved")
    auto = autograded(scores)
    assert auto and all(score == top for score, top, _ in auto.values()), auto
    written = {k: v for k, v in scores.items() if k.endswith("-answer")}
    assert written and all(manual for _, _, manual in written.values())           # left to the formgrader


@pytest.mark.parametrize("name", CHAPTERS)
def test_the_untouched_notebook_scores_nothing(course, name):
    scores = nbg.scores(course, name, "untouched")
    assert scores and all(score == 0 for score, _, _ in scores.values()), scores


@pytest.mark.parametrize("name", CHAPTERS)
def test_one_wrong_answer_loses_exactly_its_points(course, name):
    right, wrong = autograded(nbg.scores(course, name, "solved")), autograded(nbg.scores(course, name, "one-wrong"))
    lost = f"{WRONG[name]}-check"
    assert wrong[lost][0] == 0 and right[lost][0] == right[lost][1] > 0
    assert {k: v for k, v in wrong.items() if k != lost} == {k: v for k, v in right.items() if k != lost}


@pytest.mark.parametrize("name", CHAPTERS)
def test_hidden_tests_run_at_grading_time_and_only_there(course, name):
    """The graded notebook's check cells hold the hidden test and its pass line; no released file has it."""
    hidden_line = re.compile(rf"^selfcheck\.check_\w+\(\w+, seed={SEED}\)$", re.M)
    source = (course / "source" / name / f"{name}.ipynb").read_text()
    for folder in ("release", ):
        assert f"seed={SEED}" not in (course / folder / name / f"{name}.ipynb").read_text()
    assert f"seed={SEED}" not in (course.parent / "student" / "chapters" / f"{name}.md").read_text()
    assert f"seed={SEED}" in source
    nb = nbformat.read(course / "autograded" / "solved" / name / f"{name}.ipynb", as_version=4)
    checks = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert checks
    for cell in checks:
        assert hidden_line.search(cell.source), cell.source
        passes = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        assert passes.count("✓ check_") == 2, passes                     # the public check, then the hidden one
