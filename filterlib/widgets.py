"""Slider widgets that work in the static book with no kernel (every chapter with a widget).

:func:`slider` precomputes one figure per parameter value, stacks the PNGs in an ``ipywidgets.Stack`` and links
the slider to the stack with ``jslink``, a link that runs in the browser. The built book embeds the widget
state, and the vendored html-manager (``widgets_js/``) renders it offline. With ``live=True`` the figure is
instead recomputed by the kernel on every move (Jupyter only). On Colab, where ``jslink`` between widgets does not
work, :func:`slider` takes the live path by itself (:func:`on_colab`).

Frames are sharp on high-density (retina) screens: each PNG is rendered at twice the resolution (``scale=2``) and
shown at its 1x size (the image's ``width``), so a figure keeps the size it has at ``dpi`` and gains the detail.
"""
from __future__ import annotations

import importlib.util
import io
import struct
import sys
from typing import Callable, Sequence

import ipywidgets as widgets

from . import _validate as v


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
           live: bool | None = None, dpi: int = 80, scale: int = 2) -> widgets.VBox:
    """A slider over ``values`` showing ``fn(value)``, a matplotlib figure, for the selected value.

    The slider reads the parameter's value (formatted with ``fmt``, a format string or a function), not its
    index. By default every figure is computed now and the slider is ``jslink``-ed to a ``Stack`` of PNG
    images, so it works in the static HTML book with no kernel. ``live=True`` computes figures on demand in
    the kernel instead (an ``Output`` redrawn on each move; use it in Jupyter for long value lists).
    ``live=None`` (the default) means live on Colab (:func:`on_colab`), precomputed everywhere else.
    Figures are shown at ``dpi`` and rendered at ``dpi * scale`` (2: sharp on a high-density screen).
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
    control = widgets.SelectionSlider(options=[(lab, i) for i, lab in enumerate(labels)], value=start,
                                      description=name, continuous_update=True,
                                      layout=widgets.Layout(width="min(100%, 36em)"),
                                      style={"description_width": "initial"})
    if live:
        out = widgets.Output()

        def draw(index):
            png = _render(fn, values[index], dpi, scale)
            out.clear_output(wait=True)
            with out:
                from IPython.display import Image, display

                display(Image(data=png, format="png", width=_png_size(png)[0] // scale))

        control.observe(lambda change: draw(change["new"]), names="index")
        draw(start)
        return widgets.VBox([control, out])
    frames = [_frame(_render(fn, x, dpi, scale), scale) for x in values]
    stack = widgets.Stack(frames, selected_index=start)
    widgets.jslink((control, "index"), (stack, "selected_index"))
    return widgets.VBox([control, stack])


def _frame(png: bytes, scale: int) -> widgets.Image:
    """An image widget showing PNG bytes rendered at ``scale`` times their display resolution, at their 1x width
    (never wider than the column: ``max-width: 100%``, the height follows)."""
    return widgets.Image(value=png, format="png", width=str(_png_size(png)[0] // scale),
                         layout=widgets.Layout(max_width="100%", height="auto"))


def _render(fn, value, dpi, scale=1):
    fig = fn(value)
    if not hasattr(fig, "savefig"):
        raise TypeError(f"fn must return a matplotlib figure, got {type(fig).__name__} for value {value!r}")
    return figure_png(fig, dpi, scale)
