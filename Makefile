# filterbook: two commands, always.
#   make book   set up .venv (pinned by requirements.lock) and build the HTML book into _build/html
#   make test   the same set-up plus test tools, then run every test (unit, chapters, HTML, browser)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Every install goes through requirements.lock (pip constraints): the package itself (pyproject.toml, distribution
# "filterbook") asks only for lower bounds, so that installing it elsewhere keeps the torch already there; the lock
# pins the exact versions the book is built and tested with, torch included (torch==2.13.0: an open range would
# let pip pick a newer, multi-GB CUDA build on machines where only the CPU wheel of the pinned version is local).
INSTALL := $(PY) -m pip install --disable-pip-version-check --quiet -c requirements.lock
# make lab: JupyterLab settings kept in the repository, installed into the environment (not the user's settings)
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
PORT ?= 8000

.PHONY: book test bench student assignments serve lab pair lock clean help

help:
	@echo "make book   build the book into _build/html (sets up .venv first)"
	@echo "make test   run all tests (sets up .venv and the browser first)"
	@echo "make bench  benchmarks: gradient kernel, chapters' time and memory -> benchmarks/RESULTS.md (book build: add BENCH_ARGS=--book)"
	@echo "make student  student edition (no solutions; answer cells) into _student/ (.md, .ipynb, HTML), and the nbgrader course into _course/"
	@echo "make assignments  the nbgrader course (_course/: release, autograder, instructions) and the student notebooks, no HTML"
	@echo "make serve  serve _build/html on http://127.0.0.1:$(PORT)"
	@echo "make lab    JupyterLab, jupytext and nbconvert in .venv; opens the chapters (a .md opens as a notebook)"
	@echo "make pair   write the generated set-up cell into each chapter, then sync each .ipynb with its .md"
	@echo "make lock   re-pin requirements.lock from the current .venv (deliberate upgrades only)"
	@echo "make clean  remove _build (the execution cache too) and _student (never _course: it holds the grades)"

$(VENV)/.book: pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# the distribution was called "filterlib" before it became "filterbook": drop that older install of this checkout
	@$(PY) -m pip uninstall --disable-pip-version-check --quiet --yes filterlib >/dev/null 2>&1 || true
	$(INSTALL) -e '.[book]'
	@# build matplotlib's font cache now, so no chapter prints its one-time notice to stderr
	$(PY) -c "import matplotlib.pyplot"
	@touch $@

$(VENV)/.test: $(VENV)/.book
	$(INSTALL) -e '.[book,test,course]'
	@touch $@

# the grader (nbgrader) for make student / make assignments
$(VENV)/.course: $(VENV)/.book
	$(INSTALL) -e '.[book,course]'
	@touch $@

# JupyterLab, jupytext and nbconvert from the lock; then jupytext's notebook editor becomes the default viewer of
# Markdown in this environment's JupyterLab (tools/lab/overrides.json -> .venv/share/jupyter/lab/settings/), so a
# chapter .md opens as a notebook. The user's own JupyterLab settings (~/.jupyter) are not touched.
$(VENV)/.lab: $(VENV)/.book tools/lab/overrides.json
	$(INSTALL) -e '.[book,lab]'
	@mkdir -p $(dir $(LAB_OVERRIDES))
	cp tools/lab/overrides.json $(LAB_OVERRIDES)
	@touch $@

book: $(VENV)/.book
	$(PY) tools/build_book.py

test: $(VENV)/.test
	@tools/ensure_chromium.sh
	$(PY) -m pytest

bench: $(VENV)/.test
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

# the student edition and the nbgrader course: chapters without solutions, answer cells for the students, hidden
# tests for the grader (tools/make_student.py; STUDENT_ARGS passes options, e.g. STUDENT_ARGS="--chapters
# one_neuron" or "--repository-url https://github.com/you/course"). make clean never removes _course/: after
# grading it holds the gradebook and the students' submissions.
student: $(VENV)/.course
	$(PY) tools/make_student.py $(STUDENT_ARGS)

assignments: $(VENV)/.course
	$(PY) tools/make_student.py --no-html $(STUDENT_ARGS)

serve: book
	@echo "serving the book at http://127.0.0.1:$(PORT)/ (Ctrl-C to stop)"
	$(PY) -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

lab: $(VENV)/.lab
	$(VENV)/bin/jupyter lab chapters

pair: $(VENV)/.book
	$(PY) tools/install_cell.py
	$(VENV)/bin/jupytext --sync chapters/*.md

lock:
	@{ echo "# Exact versions of the whole environment (book, tests, lab), used as pip constraints: make book/test install"; \
	   echo "# with 'pip install -c requirements.lock'. Regenerate with 'make lock' after a deliberate upgrade."; \
	   $(PY) -m pip freeze --exclude-editable | grep -viE '^filterbook( |=|@|$$)' | sed 's/^torch==\([0-9.]*\)+cpu/torch==\1/'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf _build _student
