"""The notebook form of a :class:`~filterlib.diagnosis.results.Diagnosis` (chapters/diagnose.md).

:func:`html` renders what a notebook cell shows when a Diagnosis is its last expression: a sentence on the set-up,
the verdict, a table of the theorems' conditions (each with its two sides and whether it holds), a table of the
guaranteed and measured rates of the two gradient-descent runs, the estimated constants (folded away), and one
figure (an embedded PNG with alt text, drawn for a ~7-inch column). The tables are
:class:`filterlib.tables.Table`; the text form (:meth:`Diagnosis.table`) and the JSON form
(:meth:`Diagnosis.to_dict`) are unchanged for terminals and scripts.
"""
from __future__ import annotations

import base64
import html as _html
import io
import math

import numpy as np

from ..tables import Missing, Table, format_number
from .steps import iterations_to, rate as _rate

FIGSIZE = (7.0, 2.8)            # inches: two panels side by side in the book's column
DPI = 192                       # twice the 96 px/inch of a browser: sharp on a high-density screen
DISPLAY_WIDTH = 672             # CSS pixels (7 in at 96 px/inch), shrunk to the column by max-width


def condition_rows(d) -> list[tuple[str, object]]:
    """[(theorem, :class:`Condition`)] in the order the report lists them: Theorem 3.2's and Theorem 4.1's
    conditions, then Theorem 4.3's claims. Used by :func:`conditions_table` (chapters/diagnose.md)."""
    k = d.setup.get("k")
    rows = [("3.2 (one neuron)", d.theorem_3_2.condition),
            (f"4.1 (convolutional, k = {k})", d.theorem_4_1.condition)]
    rows += [("4.3 (closeness)", c) for c in d.closeness.values()]
    return rows


def _holds(c) -> object:
    if c.holds is None:
        return Missing(c.reason or "a number is missing")
    return "holds" if c.holds else "fails"


def _side(x, c) -> object:
    return Missing(c.reason or "a number is missing") if x is None else x


def conditions_table(d) -> Table:
    """The theorems' conditions on the measured constants, one row each: theorem, condition, left side, right
    side, holds/fails (chapters/diagnose.md)."""
    rows = [[name, c.statement, _side(c.lhs, c), _side(c.rhs, c), _holds(c)] for name, c in condition_rows(d)]
    return Table(rows, ["theorem", "condition", "left side", "right side", "verdict"],
                 caption="The paper's conditions on the measured constants")


def _no_bound(run) -> str:
    source = run.bound_source or "no bound"
    return source[len("none: "):] if source.startswith("none: ") else source


def _model_label(run) -> str:
    """The run's row label: its model and where its step comes from, short."""
    model = run.model.replace(" on single patches", "").replace(" model (", " (")
    source = run.eta_source or ""
    if source.startswith("Theorem"):
        how = f"η: {source}"
    elif source.startswith("no theorem"):
        how = "η = 1/(max L + 4β), no theorem"
    else:
        how = f"η {source}"
    return f"{model}; {how}"


def _count(x):
    """A step count as an int (None stays None)."""
    return None if x is None or not math.isfinite(x) else int(x)


def rate_rows(d) -> list[dict]:
    """Per run (one neuron, convolutional): the step, the guaranteed and measured rates −ln c and the steps to ε
    by the bound and as measured, as plain values (None where missing, with ``why`` saying why). Used by
    :func:`rates_table` (chapters/diagnose.md)."""
    out = []
    start, eps = d.setup.get("start"), d.setup.get("eps")
    for run in (d.run_patch, d.run_conv):
        guaranteed = _rate(run.bound)
        steps_bound = None
        if run.bound is not None and start is not None and eps is not None:
            steps_bound = iterations_to(run.bound, start, eps)
        heuristic = run.bound is not None and run.bound_source.startswith("heuristic")
        out.append({"model": _model_label(run), "eta": run.eta,
                    "guaranteed": guaranteed, "measured": _rate(run.measured_contraction),
                    "steps_bound": steps_bound, "steps_measured": _count(run.iterations_measured),
                    "extrapolated": run.extrapolated, "heuristic": heuristic,
                    "why_bound": _no_bound(run), "why_measured": run.reason or "no rate was measured"})
    return out


def rates_table(d) -> Table:
    """Guaranteed vs measured rates of the two gradient-descent runs (chapters/diagnose.md)."""
    rows = []
    for r in rate_rows(d):
        no_bound = Missing(r["why_bound"])
        no_rate = Missing(r["why_measured"])
        rows.append([r["model"],
                     r["eta"] if r["eta"] is not None else no_rate,
                     r["guaranteed"] if r["guaranteed"] is not None else no_bound,
                     r["measured"] if r["measured"] is not None else no_rate,
                     r["steps_bound"] if r["steps_bound"] is not None else no_bound,
                     r["steps_measured"] if r["steps_measured"] is not None else no_rate])
    return Table(rows, ["run", "step η", "guaranteed rate", "measured rate", "steps to ε (bound)",
                        "steps to ε (measured)"],
                 caption="Gradient descent on the sample: rate = −ln c per step, c the contraction of "
                         "‖w_t − w*‖² (larger is faster)")


_PATCH_NAMES = {"gamma": "γ(φ₀)", "L": "L(φ₀)", "beta": "β"}
_CONV_NAMES = {"gamma": "γ(φ₀)", "L": "L(φ₀)", "beta": "β", "L_cross": "L_cross", "rho": "ρ (rad)", "mu": "μ",
               "gamma_avg": "γ_avg(φ₀)"}


def constants_table(d) -> Table:
    """The estimated constants with their error bars, one row per constant and view (chapters/diagnose.md)."""
    rows = []
    for view, ests, names in (("one neuron", d.patch, _PATCH_NAMES), ("convolutional", d.conv, _CONV_NAMES)):
        for key, label in names.items():
            e = ests.get(key)
            if e is None:
                continue
            value = e.value if e.value is not None else Missing(e.reason or "not estimated")
            se = e.se if e.se is not None else Missing("no error bar for this estimator")
            rows.append([view, label, value, se])
    return Table(rows, ["view", "constant", "estimate", "error bar (se)"],
                 caption="Estimated constants (Definition 3.1, Assumptions 3.2, 4.1, 4.2, Theorem 4.3)")


# --------------------------------------------------------------------------------------------------------------
# The figure


def _series(history, bound):
    """(steps, ‖w_t − w*‖²/‖w_0 − w*‖², bound c^t or None) of one run."""
    steps = np.asarray(history.step, dtype=float)
    d = np.asarray(history.distance, dtype=float).reshape(len(steps), -1)[:, 0]
    with np.errstate(over="ignore"):                                 # a diverged run: beyond 1e308 is not drawn
        ratio = (d / d[0]) ** 2 if d[0] > 0 else d ** 2
    ratio = np.where(np.isfinite(ratio), ratio, np.nan)
    line = None if bound is None else bound ** (steps - steps[0])
    return steps, ratio, line


def figure_alt(d) -> str:
    """The alt text of the report's figure: what it shows, with the measured and guaranteed rates
    (chapters/diagnose.md)."""
    parts = []
    for side, run in (("left", d.run_patch), ("right", d.run_conv)):
        rate, bound = _rate(run.measured_contraction), _rate(run.bound)
        measured = "no measured rate" if rate is None else f"measured rate −ln c = {format_number(rate, 3)}"
        guaranteed = "no guarantee" if bound is None else f"bound −ln c = {format_number(bound, 3)} (dashed)"
        parts.append(f"{side}, {run.model}: {measured} per step, {guaranteed}")
    return ("Two panels: the squared distance to the teacher, ‖w_t − w*‖², divided by its value at the start, "
            f"against the gradient-descent step, over {d.setup.get('steps', 'the')} steps; "
            + "; ".join(parts) + ".")


def figure_png(d) -> bytes | None:
    """The report's figure as PNG bytes (7 × 2.8 in at 192 dpi), or None when the Diagnosis carries no run
    histories (for example one rebuilt from JSON). Left: the one-neuron run; right: the convolutional run; each
    with the theorem's bound c^t dashed where there is one (chapters/diagnose.md)."""
    histories = [d.details.get("history_patch"), d.details.get("history_conv")]
    if all(h is None for h in histories):
        return None
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"font.size": 10, "axes.titlesize": 10, "legend.fontsize": 9,
                                "xtick.labelsize": 9, "ytick.labelsize": 9}):
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        axes = fig.subplots(1, 2)
        titles = ["one neuron, single patches", f"convolutional, k = {d.setup.get('k')}"]
        for ax, run, h, title in zip(axes, (d.run_patch, d.run_conv), histories, titles):
            ax.set_title(title)
            ax.set_xlabel("gradient-descent step $t$")
            if h is None:
                ax.text(0.5, 0.5, "no run: " + (run.reason or "no step"), ha="center", va="center",
                        wrap=True, transform=ax.transAxes)
                ax.set_yticks([])
                continue
            steps, ratio, line = _series(h, run.bound)
            ax.plot(steps, ratio, color="tab:blue", label="measured")
            if line is not None:
                label = "heuristic bound" if run.bound_source.startswith("heuristic") else "theorem's bound"
                ax.plot(steps, line, "--", color="black", label=label)
            else:
                ax.plot([], [], " ", label="no guarantee")
            values = ratio[ratio > 0]
            if line is not None:
                values = np.concatenate([values, line[line > 0]])
            if values.size and (values.min() < 0.1 or values.max() > 1e3):
                ax.set_yscale("log")
            ax.set_ylabel(r"$\|w_t - w_*\|^2 / \|w_0 - w_*\|^2$")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, frameon=False,
                      borderaxespad=0, handlelength=1.8)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------------------
# The HTML


def _notes(d) -> list[str]:
    """Caveats that belong under the tables: conditions that hold or fail with a caveat, extrapolated counts,
    heuristic bounds."""
    notes = []
    for _, c in condition_rows(d):
        if c.holds is not None and c.reason and f"{c.reason}." not in notes:
            notes.append(f"{c.reason}.")
    for r, run in zip(rate_rows(d), (d.run_patch, d.run_conv)):
        if r["extrapolated"] and r["steps_measured"] is not None:
            notes.append(f"{run.model}: the measured steps to ε are extrapolated from the fitted rate "
                         f"({run.steps} steps were run).")
        if r["heuristic"]:
            notes.append(f"{run.model}: the bound is a heuristic ({run.bound_source}).")
    return notes


def setup_sentence(d) -> str:
    """One sentence on what was diagnosed (images, filter, patches, teacher, start, ε) (chapters/diagnose.md)."""
    s = d.setup
    try:
        return (f"{s['n_images']} images of {s['height']}×{s['width']} pixels, a {s['filter_size']}×"
                f"{s['filter_size']} filter (p = {s['p']}) at stride {s['stride']}, so k = {s['k']} patches per "
                f"image; teacher: {s['teacher']}; start at ‖w₀ − w*‖ = {s['start']:.3g}‖w*‖ "
                f"(φ₀ = {s['phi0']:.3g} rad); target ε = {s['eps']:g}.")
    except (KeyError, TypeError, ValueError):
        return ""


def input_sentence(d) -> str:
    """How the images were read and their pixel scale, in one sentence (chapters/diagnose.md)."""
    i = d.setup.get("input") or {}
    if not i:
        return ""
    px = i.get("pixels") or {}
    from ..data.files import describe

    text = f"Input: {describe(i)}."
    if px:
        text += (f" Pixels{' after centring each image' if i.get('center') else ' (not centred)'}: mean "
                 f"{px['mean']:.3g}, standard deviation {px['std']:.3g}, from {px['min']:.3g} to {px['max']:.3g}.")
    crop = d.setup.get("crop")
    if crop:
        text += f" Note: {crop['note']}."
    return text


def _input_and_activation(d) -> list[str]:
    from .causes import activation_text

    esc = _html.escape
    out = []
    sentence = input_sentence(d)
    if sentence:
        out.append(f"<p><small>{esc(sentence)}</small></p>")
    act = activation_text(d.activation)
    if act:
        out.append(f"<p><strong>Activation.</strong> {esc(act[0].upper() + act[1:])}.</p>")
    for w in d.activation.get("warnings", []):
        out.append(f'<p class="filterlib-warning"><strong>Warning:</strong> {esc(w)}.</p>')
    return out


def html(d) -> str:
    """The Diagnosis as HTML for a notebook (``Diagnosis._repr_html_``; chapters/diagnose.md)."""
    esc = _html.escape
    parts = ['<div class="filterlib-diagnosis">']
    sentence = setup_sentence(d)
    if sentence:
        parts.append(f"<p><strong>Diagnosis.</strong> {esc(sentence)}</p>")
    parts += _input_and_activation(d)
    parts.append(f'<p class="filterlib-verdict"><strong>Verdict.</strong> {esc(d.verdict)}</p>')
    if d.causes:
        parts.append('<ul class="filterlib-causes">' + "".join(
            f"<li><strong>{esc(c['cause'])}</strong>: {esc(c['evidence'])}. <em>To test it:</em> {esc(c['fix'])}.</li>"
            for c in d.causes) + "</ul>")
    parts.append(conditions_table(d)._repr_html_())
    parts.append(rates_table(d)._repr_html_())
    notes = _notes(d)
    if notes:
        parts.append("<p><small>" + " ".join(esc(n[:1].upper() + n[1:]) for n in notes)
                     + "</small></p>")
    png = figure_png(d)
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        alt = esc(figure_alt(d), quote=True)
        parts.append(f'<figure class="filterlib-diagnosis-figure" style="margin: 1em 0"><img src="data:image/png;base64,{data}" '
                     f'alt="{alt}" width="{DISPLAY_WIDTH}" style="max-width: 100%; height: auto">'
                     "<figcaption>Gradient descent on the sample: ‖w_t − w*‖² relative to the start (solid) "
                     "and the theorem's bound c<sup>t</sup> (dashed) where one applies.</figcaption></figure>")
    parts.append("<details><summary>Estimated constants</summary>"
                 + constants_table(d)._repr_html_() + "</details>")
    parts.append("</div>")
    return "".join(parts)
