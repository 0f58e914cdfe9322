"""Which filter sizes (and strides) are easy to learn on these images? :func:`diagnose_sweep` runs
:func:`~filterlib.diagnosis.diagnose` once per setting and gathers the results in a :class:`Sweep`: one compact
table (γ/L, the conditions of Theorems 3.2 and 4.1, guaranteed and measured rates per setting), one JSON entry per
setting and, in a notebook, one figure (chapters/diagnose.md; ``python -m filterlib diagnose --filter-size 3,5,7
--stride 1,2``).
"""
from __future__ import annotations

import base64
import html as _html
import io
import json
from dataclasses import dataclass

from .. import _validate as v
from .pipeline import diagnose
from .results import Diagnosis
from .steps import rate as _rate


def _sizes(x, name: str) -> list[int]:
    """One positive int or a non-empty sequence of them, as a list without repeats (order kept)."""
    items = [x] if isinstance(x, int) or not hasattr(x, "__iter__") else list(x)
    if not items:
        raise ValueError(f"{name} must name at least one value")
    return list(dict.fromkeys(v.positive_int(t, name) for t in items))


@dataclass(frozen=True)
class Sweep:
    """The diagnoses of one set of images at several filter sizes and strides (chapters/diagnose.md):
    ``settings`` lists (filter_size, stride) and ``results`` the :class:`Diagnosis` of each, in the same order."""

    settings: list
    results: list

    def rows(self) -> list[dict]:
        """Per setting the compact numbers of the sweep table, as plain values (None where missing)."""
        out = []
        for (s, stride), d in zip(self.settings, self.results):
            g, L = d.patch["gamma"].value, d.patch["L"].value
            out.append({"filter_size": s, "stride": stride, "p": d.setup["p"], "k": d.setup["k"],
                        "teacher_active": d.activation.get("teacher_active_fraction"),
                        "gamma_over_L": g / L if g is not None and L else None,
                        "theorem_3_2": d.theorem_3_2.condition.holds,
                        "theorem_4_1": d.theorem_4_1.condition.holds,
                        "guaranteed_rate": _rate(d.theorem_3_2.contraction),
                        "measured_rate_one_neuron": _rate(d.run_patch.measured_contraction),
                        "measured_rate_conv": _rate(d.run_conv.measured_contraction),
                        "cause": ", ".join(c["cause"] for c in d.causes) or None})
        return out

    def table(self):
        """One row per setting as a :class:`filterlib.tables.Table` (chapters/diagnose.md)."""
        from ..tables import Missing, Table

        def cell(x, why):
            if x is None:
                return Missing(why)
            if isinstance(x, bool):
                return "holds" if x else "fails"
            return x

        rows = [[f"{r['filter_size']}×{r['filter_size']}, stride {r['stride']}",
                 cell(r["teacher_active"], "not measured"),
                 cell(r["gamma_over_L"], "γ or L is missing"), cell(r["theorem_3_2"], "unknown"),
                 cell(r["theorem_4_1"], "unknown"), cell(r["guaranteed_rate"], "no guarantee"),
                 cell(r["measured_rate_one_neuron"], "no rate"), cell(r["measured_rate_conv"], "no rate"),
                 r["cause"] or "—"] for r in self.rows()]
        return Table(rows, ["filter", "teacher active", "γ/L", "Thm 3.2", "Thm 4.1", "rate, Thm 3.2",
                            "rate, one neuron", "rate, conv", "cause of a tiny γ"],
                     caption="One diagnosis per setting: teacher active = fraction of patches; γ/L of single "
                             "patches; rate = −ln c per step, c the contraction of ‖w_t − w*‖² (guaranteed by "
                             "Theorem 3.2, measured for one neuron and for the convolutional filter)")

    def text(self) -> str:
        """The sweep as plain text for a terminal: one line per setting, then each setting's verdict."""
        head = (f"{'filter':>6} {'stride':>6} {'p':>4} {'k':>7} {'active':>8} {'γ/L':>10} {'Thm3.2':>7} "
                f"{'Thm4.1':>7} {'guar.':>10} {'meas.1':>10} {'meas.conv':>10}  cause")
        lines = [f"Sweep over {len(self.settings)} settings (rates: −ln c per step, c the contraction of "
                 f"‖w_t − w*‖²; γ/L of single patches)", head]

        def f(x, w=10):
            if x is None:
                return f"{'—':>{w}}"
            if isinstance(x, bool):
                return f"{'holds' if x else 'FAILS':>{w}}"
            return f"{x:>{w}.3g}"

        for r in self.rows():
            act = "—" if r["teacher_active"] is None else f"{100 * r['teacher_active']:.3g}%"
            lines.append(f"{r['filter_size']:>6} {r['stride']:>6} {r['p']:>4} {r['k']:>7} {act:>8} "
                         f"{f(r['gamma_over_L'])} {f(r['theorem_3_2'], 7)} {f(r['theorem_4_1'], 7)} "
                         f"{f(r['guaranteed_rate'])} {f(r['measured_rate_one_neuron'])} "
                         f"{f(r['measured_rate_conv'])}  {r['cause'] or '—'}")
        lines.append("")
        for (s, stride), d in zip(self.settings, self.results):
            lines.append(f"{s}×{s}, stride {stride}: {d.verdict}")
            lines += [f"  WARNING: {w}" for w in d.activation.get("warnings", [])]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """{"sweep": [one entry per setting: {"filter_size", "stride", "diagnosis": Diagnosis.to_dict()}]}, plain
        JSON-ready values (chapters/diagnose.md)."""
        return {"sweep": [{"filter_size": s, "stride": stride, "diagnosis": d.to_dict()}
                          for (s, stride), d in zip(self.settings, self.results)]}

    def to_json(self, **kw) -> str:
        """:meth:`to_dict` as JSON (NaN is never written)."""
        return json.dumps(self.to_dict(), allow_nan=False, **kw)

    def __str__(self) -> str:
        return self.text()

    __repr__ = __str__

    def figure_png(self) -> bytes:
        """One figure (PNG bytes): per setting, γ/L of single patches and the guaranteed and measured one-neuron
        rates and the measured convolutional rate (log scale) (chapters/diagnose.md)."""
        import matplotlib
        import numpy as np
        from matplotlib.figure import Figure

        rows = self.rows()
        labels = [f"{r['filter_size']}×{r['filter_size']}\nstride {r['stride']}" for r in rows]
        series = {"γ/L, single patches": "gamma_over_L", "Thm 3.2 guaranteed rate": "guaranteed_rate",
                  "measured rate, one neuron": "measured_rate_one_neuron", "measured rate, conv": "measured_rate_conv"}
        with matplotlib.rc_context({"font.size": 10, "legend.fontsize": 9}):
            fig = Figure(figsize=(7.0, 3.0), layout="constrained")
            ax = fig.subplots()
            x = np.arange(len(rows))
            for (label, key), marker in zip(series.items(), "osD^"):
                y = [r[key] if r[key] is not None and r[key] > 0 else np.nan for r in rows]
                ax.semilogy(x, y, marker + "-", label=label)
            ax.set_xticks(x)
            ax.set_xticklabels(labels)
            ax.set_ylabel("value (log scale; larger is easier)")
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=192)
        return buf.getvalue()

    def figure_alt(self) -> str:
        """Alt text of :meth:`figure_png`: what it shows, with the numbers per setting."""
        parts = []
        for r in self.rows():
            g = "missing" if r["gamma_over_L"] is None else f"{r['gamma_over_L']:.3g}"
            m = "none" if r["measured_rate_one_neuron"] is None else f"{r['measured_rate_one_neuron']:.3g}"
            parts.append(f"{r['filter_size']}×{r['filter_size']} stride {r['stride']}: γ/L {g}, measured "
                         f"one-neuron rate {m}")
        return ("Semi-log plot, one point per filter setting, of γ/L of single patches, Theorem 3.2's guaranteed "
                "rate and the measured one-neuron and convolutional rates; " + "; ".join(parts) + ".")

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.figure_png()).decode("ascii")
        alt = _html.escape(self.figure_alt(), quote=True)
        warn = [f"{s}×{s}, stride {st}: {w}" for (s, st), d in zip(self.settings, self.results)
                for w in d.activation.get("warnings", [])]
        notes = "".join(f"<p><small>Warning: {_html.escape(w)}.</small></p>" for w in warn)
        return ('<div class="filterlib-sweep">' + self.table()._repr_html_() + notes
                + f'<figure style="margin: 1em 0"><img src="data:image/png;base64,{data}" alt="{alt}" width="672" '
                  'style="max-width: 100%; height: auto"><figcaption>One diagnosis per setting: γ/L of single '
                  "patches and the per-step rates −ln c (log scale).</figcaption></figure></div>")


def diagnose_sweep(images, filter_sizes, strides=1, w_star=None, **kwargs) -> Sweep:
    """:func:`~filterlib.diagnosis.diagnose` for every ``filter_sizes`` × ``strides`` (ints or sequences of ints),
    with the same images, teacher rule (None/"random" from ``seed``, or "gabor"; an array fixes one size) and
    keyword arguments; each result equals a separate call with that setting. Returns a :class:`Sweep`. Defined in
    chapters/diagnose.md."""
    sizes, strides = _sizes(filter_sizes, "filter_sizes"), _sizes(strides, "strides")
    if len(sizes) > 1 and w_star is not None and not isinstance(w_star, str):
        raise ValueError("w_star: a given teacher array has one size; sweep filter sizes with w_star=None, "
                         "'random' or 'gabor'")
    settings = [(s, t) for s in sizes for t in strides]
    results: list[Diagnosis] = [diagnose(images, s, t, w_star, **kwargs) for s, t in settings]
    return Sweep(settings, results)
