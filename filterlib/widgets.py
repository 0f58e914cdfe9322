"""Slider widgets that work in the static book with no kernel (every chapter with a widget).

:func:`slider` precomputes one figure per parameter value, stacks the PNGs in an ``ipywidgets.Stack`` and links
the slider to the stack with ``jslink``, a link that runs in the browser. The built book embeds the widget
state, and the vendored html-manager (``widgets_js/``) renders it offline. With ``live=True`` the figure is
instead recomputed by the kernel on every move (Jupyter only). On Colab, where ``jslink`` between widgets does not
work, :func:`slider` takes the live path by itself (:func:`on_colab`).

Frames are sharp on high-density (retina) screens: each PNG is rendered at twice the resolution (``scale=2``) and
shown at its 1x size (the image's ``width``), so a figure keeps the size it has at ``dpi`` and gains the detail.

Frames are accessible: each is an ``<img>`` whose ``alt`` text says which value it shows and what the figure plots
(``alt``), so a screen reader announces "At σ = 0.5: median distance against iteration …" rather than nothing;
the slider's accessible name (its ``name``) and announced value (the readout, not the index) are set in the
browser by ``vendor/widgets/widgets-offline.js``. The accessibility statement is chapters/accessibility.md.
"""
from __future__ import annotations

import base64
import html
import importlib.util
import io
import re
import struct
import sys
from typing import Callable, Sequence

import ipywidgets as widgets

from . import _validate as v
from . import plots  # noqa: F401  (its import sets the colour-blind-safe default colours for the frames' figures)


def figure_png(fig, dpi: int = 80, scale: int = 1) -> bytes:
    """Render a matplotlib figure to PNG bytes at ``dpi * scale`` dots per inch and close it (so the notebook does
    not also show it).

    The frames of :func:`slider` (chapters/gd_gaussian.md), with ``scale=2``: shown at the width :func:`_png_size`
    reports divided by 2, they are sharp on a high-density screen."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi * scale, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _png_size(png: bytes) -> tuple[int, int]:
    """The (width, height) in pixels of PNG bytes, read from the PNG header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not PNG bytes")
    return struct.unpack(">II", png[16:24])


def on_colab() -> bool:
    """True inside a Google Colab runtime (``google.colab`` is imported there, or importable).

    Colab's widget manager does not run ``jslink`` links between widgets, so the precomputed sliders of the
    static book would not move there: :func:`slider` then recomputes figures in the kernel (chapters/gd_gaussian.md).
    """
    if "google.colab" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):                    # no "google" package, or a stand-in without a spec
        return False


def _labels(values, fmt):
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise ValueError("values must be a non-empty list of parameter values")
    labels = [fmt(x) if callable(fmt) else fmt.format(x) for x in values]
    if len(set(labels)) != len(labels):
        raise ValueError(f"the labels made by fmt from values must be distinct, got {labels}; "
                         "pass a finer fmt such as '{:.3g}'")
    return labels


def slider(fn: Callable, values: Sequence, *, name: str = "value", fmt="{:g}", start: int = 0,
           live: bool | None = None, dpi: int = 80, scale: int = 2, alt=None) -> widgets.VBox:
    """A slider over ``values`` showing ``fn(value)``, a matplotlib figure, for the selected value.

    The slider reads the parameter's value (formatted with ``fmt``, a format string or a function), not its
    index. By default every figure is computed now and the slider is ``jslink``-ed to a ``Stack`` of PNG
    images, so it works in the static HTML book with no kernel. ``live=True`` computes figures on demand in
    the kernel instead (an ``Output`` redrawn on each move; use it in Jupyter for long value lists).
    ``live=None`` (the default) means live on Colab (:func:`on_colab`), precomputed everywhere else.
    Figures are shown at ``dpi`` and rendered at ``dpi * scale`` (2: sharp on a high-density screen).
    ``alt``: what the figure shows, for readers who cannot see it (a string, or a function of the value returning
    one); each frame's alternative text is "At {name} = {label}: {alt}" (:func:`frame_alt`). Without ``alt`` the
    text is made from the figure's titles and axis labels (:func:`describe_figure`).
    Defined in chapters/gd_gaussian.md; used in chapters/smoothness.md, chapters/rate.md, chapters/closeness.md
    and chapters/mnist.md.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function of one parameter returning a matplotlib figure, got {fn!r}")
    labels = _labels(values, fmt)
    start = v.nonneg_int(start, "start")
    if start >= len(labels):
        raise ValueError(f"start must be an index below len(values)={len(labels)}, got {start}")
    dpi = v.positive_int(dpi, "dpi")
    scale = v.positive_int(scale, "scale")
    live = on_colab() if live is None else v.flag(live, "live")
    if alt is not None and not (callable(alt) or isinstance(alt, str)):
        raise TypeError(f"alt must be a string or a function of the value returning one, got {type(alt).__name__}")
    control = widgets.SelectionSlider(options=[(lab, i) for i, lab in enumerate(labels)], value=start,
                                      description=name, continuous_update=True,
                                      layout=widgets.Layout(width="min(100%, 36em)"),
                                      style={"description_width": "initial"})
    if live:
        out = widgets.Output()

        def draw(index):
            png, text = _render(fn, values[index], dpi, scale, name, labels[index], alt)
            out.clear_output(wait=True)
            with out:
                from IPython.display import HTML, display

                display(HTML(_img_html(png, scale, text)))

        control.observe(lambda change: draw(change["new"]), names="index")
        draw(start)
        return widgets.VBox([control, out])
    frames = [_frame(*_render(fn, x, dpi, scale, name, lab, alt), scale) for x, lab in zip(values, labels)]
    stack = widgets.Stack(frames, selected_index=start)
    widgets.jslink((control, "index"), (stack, "selected_index"))
    return widgets.VBox([control, stack])


def _frame(png: bytes, text: str, scale: int) -> widgets.HTML:
    """A frame: an ``<img>`` of PNG bytes rendered at ``scale`` times their display resolution, shown at their 1x
    width (never wider than the column: ``max-width: 100%``, the height follows), with ``text`` as its ``alt``.

    An HTML widget, not ``ipywidgets.Image``: Image has no alternative text, and a frame must have one."""
    return widgets.HTML(value=_img_html(png, scale, text))


def _img_html(png: bytes, scale: int, text: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" width="{_png_size(png)[0] // scale}" '
            f'alt="{html.escape(text, quote=True)}" style="max-width: 100%; height: auto">')


def frame_png(frame: widgets.HTML) -> bytes:
    """The PNG bytes a precomputed frame of :func:`slider` shows (decoded from its ``<img>``). Defined for the
    slider tests of chapters/accessibility.md (every frame differs from its neighbours)."""
    found = re.search(r'src="data:image/png;base64,([^"]+)"', frame.value)
    if not found:
        raise ValueError("not a slider frame (no PNG image)")
    return base64.b64decode(found.group(1))


def frame_alt(frame: widgets.HTML) -> str:
    """The alternative text of a precomputed frame of :func:`slider` (chapters/accessibility.md: it names the
    slider's value)."""
    found = re.search(r'alt="([^"]*)"', frame.value)
    if not found:
        raise ValueError("not a slider frame (no alt text)")
    return html.unescape(found.group(1))


def _plain(text: str) -> str:
    """A matplotlib label as plain words: TeX markup ($, backslash commands, braces) removed."""
    text = text.replace("\\|", "‖")
    text = re.sub(r"\\(mathrm|mathbf|operatorname|text)\b", "", text)
    text = re.sub(r"\\([A-Za-z]+)", r"\1", text).replace("$", "")
    return re.sub(r"\s+", " ", re.sub(r"[{}_^]|\\[,;! ]", " ", text)).strip()


def describe_figure(fig) -> str:
    """A plain-words description of a matplotlib figure from its titles and axis labels ("Figure: title. Panel
    1: y label against x label ..."), the fallback alternative text of :func:`slider`'s frames
    (chapters/accessibility.md)."""
    parts = []
    title = fig.get_suptitle()
    if title:
        parts.append(_plain(title) + ".")
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    for k, ax in enumerate(axes, 1):
        words = []
        if ax.get_title():
            words.append(_plain(ax.get_title()))
        y, x = _plain(ax.get_ylabel()), _plain(ax.get_xlabel())
        if y and x:
            words.append(f"{y} against {x}")
        if words:
            parts.append((f"Panel {k}: " if len(axes) > 1 else "") + "; ".join(words) + ".")
    return " ".join(parts) or "A figure without titles or axis labels."


def _render(fn, value, dpi, scale=1, name="value", label=None, alt=None):
    """The PNG bytes of ``fn(value)`` and its alternative text "At {name} = {label}: {what it shows}"."""
    fig = fn(value)
    if not hasattr(fig, "savefig"):
        raise TypeError(f"fn must return a matplotlib figure, got {type(fig).__name__} for value {value!r}")
    what = alt(value) if callable(alt) else alt
    if what is not None and not isinstance(what, str):
        raise TypeError(f"alt(value) must return a string, got {type(what).__name__} for value {value!r}")
    what = (what or "").strip() or describe_figure(fig)
    label = str(value) if label is None else label
    return figure_png(fig, dpi, scale), f"At {name} = {label}: {what}"
