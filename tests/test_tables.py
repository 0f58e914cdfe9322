"""filterlib.tables: one result table, HTML in the book and aligned text in a terminal."""
from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

from filterlib.tables import Missing, Table, format_number


class Cells(HTMLParser):
    """The text of every <th>/<td> of an HTML table, row by row (an independent reading of the HTML)."""

    def __init__(self):
        super().__init__()
        self.rows, self.cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def read_html(table: Table) -> list[list[str]]:
    parser = Cells()
    parser.feed(table._repr_html_())
    return parser.rows


@pytest.mark.parametrize("value, digits, text", [
    (3.941291737419306e-15, 3, "3.94e-15"), (0.123456, 3, "0.123"), (123.456, 3, "123"), (1.0, 3, "1.00"),
    (2.5e7, 2, "2.5e7"), (-0.0123, 2, "-0.012"), (0.0, 3, "0"), (12345.6, 3, "12 346"),
])
def test_significant_digits(value, digits, text):
    assert format_number(value, digits).replace("\u2009", " ") == text
    # the shown number is the value to the stated number of significant digits
    shown = float(text.replace(" ", ""))
    if value:
        assert abs(shown - value) <= 0.5 * 10 ** (math.floor(math.log10(abs(value))) - digits + 1) * 1.0000001 \
            or abs(value) >= 1e4


def test_html_form_uses_a_true_minus_and_powers_of_ten():
    assert format_number(3.94e-15, 3, html_form=True) == "3.94\u00a0×\u00a010⁻¹⁵"      # never broken
    assert format_number(-2.0, 2, html_form=True) == "−2.0"
    assert format_number(math.inf, 3) == "∞"


def test_html_and_text_hold_the_same_cells():
    t = Table([["Gaussian", 0.5, 12, True], ["cube", 1 / 3, 7, False]], ["law", "γ(φ)", "steps", "holds"],
              caption="Constants")
    rows = read_html(t)
    assert rows == [["law", "γ(φ)", "steps", "holds"], ["Gaussian", "0.500", "12", "yes"],
                    ["cube", "0.333", "7", "no"]]
    text = str(t).splitlines()
    assert text[0] == "Constants" and text[1].split() == ["law", "γ(φ)", "steps", "holds"]
    assert [line.split() for line in text[3:]] == [["Gaussian", "0.500", "12", "yes"], ["cube", "0.333", "7", "no"]]
    # columns line up: every row has the same width up to its last column, numbers right-aligned
    assert text[3].index("0.500") == text[4].index("0.333")
    assert text[3].index("12") + 1 == text[4].index("7")
    assert repr(t) == str(t)
    assert "<caption>Constants</caption>" in t._repr_html_()


def test_missing_values_are_dashes_with_their_reason():
    t = Table([[1.0, None], [float("nan"), Missing("too few patches")], [np.nan, 2.0]], ["a", "b"])
    rows = read_html(t)
    assert rows[1] == ["1.00", "—1"] and rows[2] == ["—2", "—3"] and rows[3] == ["—2", "2.00"]
    assert rows[-1][0] == "— 1 no value; 2 not a number (NaN); 3 too few patches"
    text = str(t)
    assert "—[1] no value" in text and "—[2] not a number (NaN)" in text and "—[3] too few patches" in text
    assert "nan" not in text.lower().replace("not a number (nan)", "")
    assert t.to_dict() == {"columns": ["a", "b"], "rows": [[1.0, None], [None, None], [None, 2.0]]}


def test_tensors_and_numpy_scalars_are_numbers():
    t = Table([[torch.tensor(0.25, dtype=torch.float64), np.float32(2.0), np.int64(3)]], ["x", "y", "n"], digits=2)
    assert read_html(t)[1] == ["0.25", "2.0", "3"]


def test_per_column_digits_and_html_escaping():
    t = Table([["<b>", 0.123456, 0.123456]], ["name", "short", "long"], digits={"long": 5})
    assert read_html(t)[1] == ["<b>", "0.123", "0.12346"]
    assert "&lt;b&gt;" in t._repr_html_()


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(rows=[[1, 2]], columns=["a"]), ValueError, r"rows\[0\] has 2 values"),
    (dict(rows=[[1]], columns="a"), TypeError, "columns"),
    (dict(rows=[[1]], columns=["a"], digits=0), ValueError, "digits"),
    (dict(rows=[[1]], columns=["a"], digits={"b": 2}), ValueError, "digits names columns"),
    (dict(rows=[[1]], columns=["a"], caption=3), TypeError, "caption"),
])
def test_bad_arguments_name_the_parameter(kwargs, error, match):
    with pytest.raises(error, match=match):
        Table(**kwargs)


def test_numbers_align_right_and_text_left_in_html():
    html = Table([["x", 1.5]], ["name", "value"])._repr_html_()
    assert re.search(r'<th style="text-align: left">name</th><th style="text-align: right">value</th>', html)
