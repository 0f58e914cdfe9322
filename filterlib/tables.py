"""Result tables: one object that shows as an HTML table in a notebook and as an aligned text table in a terminal.

A chapter builds a :class:`Table` from rows of values and a header (units in the header, e.g. ``"time (s)"``) and
leaves it as the cell's last expression: the book shows a real table (``_repr_html_``), a terminal or a plain
``print`` shows aligned text (``__str__``). Numbers are rounded to ``digits`` significant digits (per column if
a dict is given); very large and very small ones switch to scientific notation (``3.94 × 10⁻¹⁵`` in HTML,
``3.94e-15`` in text). A missing value (None, NaN, or :class:`Missing` with its reason) is shown as "—" with a
numbered note under the table saying why. Every chapter's results table uses it (chapters/*.md).
"""
from __future__ import annotations

import html
import math
import numbers
from dataclasses import dataclass
from typing import Any, Sequence

from . import _validate

__all__ = ["Missing", "Table"]

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass(frozen=True)
class Missing:
    """A value that is not there, and why (shown as "—" with the reason in a note under the table); e.g. in the
    results tables of chapters/diagnose.md."""

    reason: str


def _is_missing(value) -> str | None:
    """The reason a cell is shown as "—", or None when it has a value."""
    if isinstance(value, Missing):
        return value.reason
    if value is None:
        return "no value"
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(float(value)):
        return "not a number (NaN)"
    return None


def _scalar(value):
    """A 0-d tensor or array (or a NumPy scalar) as a Python number; anything else unchanged."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        return item()
    return value


def format_number(value: float, digits: int, *, html_form: bool = False) -> str:
    """``value`` with ``digits`` significant digits; scientific notation below 1e-3 and from 1e6 on. The cells of
    every chapter's tables (e.g. chapters/rate.md)."""
    x = float(value)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    exponent = math.floor(math.log10(abs(x)))
    if -3 <= exponent < 6:
        decimals = max(digits - 1 - exponent, 0)
        text = f"{x:,.{decimals}f}".replace(",", "\u2009") if exponent >= 4 else f"{x:.{decimals}f}"
        return text.replace("-", "−") if html_form else text
    mantissa, power = f"{x:.{max(digits - 1, 0)}e}".split("e")
    if html_form:
        return f"{mantissa.replace('-', '−')}\u00a0×\u00a010{str(int(power)).translate(_SUPERSCRIPT)}"
    return f"{mantissa}e{int(power)}"


class Table:
    """A table of results: ``Table(rows, columns, digits=3, caption=None)``. Defined for every chapter's results
    (e.g. chapters/rate.md, whose tables were printed text before); :mod:`filterlib.diagnosis` shows its report
    with it (chapters/diagnose.md).

    ``rows``: a sequence of rows, each a sequence with one value per column (numbers, strings, booleans shown as
    yes/no, None/NaN/:class:`Missing` shown as "—" with a note). ``columns``: the header, one string per column.
    ``digits``: significant digits of floats, an int or a ``{column: int}`` dict (others get 3). Integers are shown
    in full."""

    def __init__(self, rows: Sequence[Sequence[Any]], columns: Sequence[str], *, digits: int | dict = 3,
                 caption: str | None = None):
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise TypeError("columns must be a sequence of strings (the header)")
        self.columns = list(columns)
        self.rows = [list(row) for row in rows]
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"rows[{i}] has {len(row)} values but there are {len(self.columns)} columns")
        if isinstance(digits, dict):
            unknown = sorted(set(digits) - set(self.columns))
            if unknown:
                raise ValueError(f"digits names columns that are not in the table: {unknown}")
            self.digits = {c: _validate.positive_int(digits.get(c, 3), "digits") for c in self.columns}
        else:
            d = _validate.positive_int(digits, "digits")
            self.digits = {c: d for c in self.columns}
        if caption is not None and not isinstance(caption, str):
            raise TypeError("caption must be a string or None")
        self.caption = caption

    # ----------------------------------------------------------------------------------------------------------

    def _cells(self, html_form: bool) -> tuple[list[list[str]], list[str], list[list[bool]]]:
        """(rendered cells, notes, is-number flags)."""
        notes: list[str] = []
        out, numeric = [], []
        for row in self.rows:
            cells, flags = [], []
            for column, raw in zip(self.columns, row):
                value = _scalar(raw)
                reason = _is_missing(value)
                if reason is not None:
                    if reason not in notes:
                        notes.append(reason)
                    mark = notes.index(reason) + 1
                    cells.append(f"—<sup>{mark}</sup>" if html_form else f"—[{mark}]")
                    flags.append(True)
                    continue
                if isinstance(value, bool):
                    text, number = ("yes" if value else "no"), False
                elif isinstance(value, numbers.Integral):
                    text, number = str(int(value)), True
                    text = text.replace("-", "−") if html_form else text
                elif isinstance(value, numbers.Real):
                    text, number = format_number(value, self.digits[column], html_form=html_form), True
                else:
                    text, number = str(value), False
                    text = html.escape(text) if html_form else text
                cells.append(text)
                flags.append(number)
            out.append(cells)
            numeric.append(flags)
        return out, notes, numeric

    def _repr_html_(self) -> str:
        cells, notes, numeric = self._cells(html_form=True)
        numbers_column = [all(flags[j] for flags in numeric) and bool(numeric) for j in range(len(self.columns))]
        align = ['style="text-align: right"' if n else 'style="text-align: left"' for n in numbers_column]
        head = "".join(f"<th {a}>{html.escape(c)}</th>" for c, a in zip(self.columns, align))
        body = "".join("<tr>" + "".join(f"<td {a}>{t}</td>" for t, a in zip(row, align)) + "</tr>"
                       for row in cells)
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        foot = ""
        if notes:
            items = "; ".join(f"<sup>{i}</sup> {html.escape(n)}" for i, n in enumerate(notes, 1))
            foot = f'<tfoot><tr><td colspan="{len(self.columns)}">— {items}</td></tr></tfoot>'
        return (f'<table class="filterlib-table">{caption}<thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody>{foot}</table>")

    def __str__(self) -> str:
        cells, notes, numeric = self._cells(html_form=False)
        widths = [max([len(c)] + [len(row[j]) for row in cells]) for j, c in enumerate(self.columns)]
        numbers_column = [all(flags[j] for flags in numeric) and bool(numeric) for j in range(len(self.columns))]

        def line(values):
            return "  ".join(v.rjust(w) if n else v.ljust(w)
                             for v, w, n in zip(values, widths, numbers_column)).rstrip()

        lines = ([self.caption] if self.caption else []) + [line(self.columns),
                                                            "  ".join("-" * w for w in widths)]
        lines += [line(row) for row in cells]
        lines += [f"—[{i}] {n}" for i, n in enumerate(notes, 1)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def to_dict(self) -> dict:
        """The table as plain data: {"columns": [...], "rows": [[...], ...]} (missing values as None)."""
        rows = [[None if _is_missing(_scalar(v)) is not None else _scalar(v) for v in row] for row in self.rows]
        return {"columns": list(self.columns), "rows": rows}
