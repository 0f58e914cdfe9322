"""Accessibility without a browser: the default colours stay apart for colour-blind readers (filterlib/plots.py),
the book's Sphinx extension fixes the HTML writers' ARIA (tools/sphinx/filterbook_sphinx.py), and the statement
page (chapters/accessibility.md) is in the book. The browser checks (axe-core, alt texts, sliders) are in
tests/test_browser.py."""
import sys

import matplotlib
import numpy as np
import yaml

from conftest import ROOT
from filterlib import plots

# Colour vision deficiency as a linear map of linear RGB (Machado, Oliveira & Fernandes 2009, severity 1).
CVD = {"protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                      [-0.003882, -0.048116, 1.051998]],
       "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                        [-0.011820, 0.042940, 0.968881]],
       "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                      [0.004733, 0.691367, 0.303900]]}


def linear_rgb(colour: str) -> np.ndarray:
    c = np.array(matplotlib.colors.to_rgb(colour))
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of a linear RGB colour."""
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ np.clip(rgb, 0, 1)
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def closest_pair(colours, deficiency=None) -> float:
    """The smallest colour difference (CIE76 ΔE) between two of ``colours`` as seen with ``deficiency``."""
    seen = [lab(np.array(CVD[deficiency]) @ linear_rgb(c) if deficiency else linear_rgb(c)) for c in colours]
    return min(float(np.linalg.norm(a - b)) for i, a in enumerate(seen) for b in seen[i + 1:])


def test_default_colours_stay_apart_for_colour_blind_readers():
    """Every pair of the default colours differs by ΔE > 15 (clearly distinct) with each dichromacy; matplotlib's
    own tab10, with its red and green, does not (the criterion tells palettes apart)."""
    for deficiency in [None, *CVD]:
        assert closest_pair(plots.COLOURS, deficiency) > 15, deficiency
    assert closest_pair(["tab:red", "tab:green"], "deuteranopia") < 10
    assert closest_pair(["tab:blue", "tab:orange", "tab:green", "tab:red"], "protanopia") < 10


def test_importing_plots_sets_the_default_colour_cycle():
    matplotlib.rcParams["axes.prop_cycle"] = matplotlib.cycler(color=["red", "green"])
    plots.use_accessible_colours()
    assert matplotlib.rcParams["axes.prop_cycle"].by_key()["color"] == plots.COLOURS
    assert plots.COLOURS[:4] == [plots.OKABE_ITO[k] for k in ["blue", "orange", "green", "vermillion"]]
    assert len(set(plots.LINESTYLES)) == len(plots.LINESTYLES) and len(set(plots.MARKERS)) == len(plots.MARKERS)


def test_sphinx_extension_fixes_the_writers_aria():
    sys.path.insert(0, str(ROOT / "tools" / "sphinx"))
    try:
        from filterbook_sphinx import accessible_body
    finally:
        sys.path.remove(str(ROOT / "tools" / "sphinx"))
    body = ('<details class="hide above-input"><summary aria-label="Toggle hidden content">\n'
            '<p class="collapsed admonition-title">Show code cell source</p></summary></details>'
            '<div role="list" class="citation-list">\n<div class="citation" id="id4" role="doc-biblioentry">\n'
            '<span class="label">Du</span></div></div>')
    fixed = accessible_body(body)
    assert "<summary>\n<p" in fixed and "Toggle hidden content" not in fixed
    assert 'id="id4" role="listitem"' in fixed and "doc-biblioentry" not in fixed
    assert accessible_body(fixed) == fixed


def test_theme_component_overrides_keep_their_visible_text_in_the_name():
    templates = ROOT / "tools" / "sphinx" / "templates"
    search = (templates / "search-button-field.html").read_text()
    assert "aria-label" not in search.split("#}")[-1] and "search-button__default-text" in search
    switcher = (templates / "theme-switcher.html").read_text().split("#}")[-1]
    assert switcher.count('aria-hidden="true"') == 3 and "aria-label=" in switcher


def test_statement_page_is_in_the_appendix():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    appendix = [c["file"] for part in toc["parts"] if part.get("caption") == "Appendix" for c in part["chapters"]]
    assert "chapters/accessibility" in appendix
    text = (ROOT / "chapters" / "accessibility.md").read_text()
    assert "## Exceptions owned by the theme" in text and "## Known gaps" in text
