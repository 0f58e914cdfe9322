"""filterlib.widgets: the kernel-free slider (precomputed frames + jslink) and its live mode."""
import ipywidgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from filterlib import widgets  # noqa: E402


def line_figure(slope):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, slope])
    ax.set_ylim(-3, 3)
    return fig


def test_static_slider_precomputes_and_links():
    values = [-2.0, 0.5, 1.25]
    box = widgets.slider(line_figure, values, name="slope", fmt="{:.2f}", start=1)
    control, stack = box.children
    assert isinstance(control, ipywidgets.SelectionSlider) and isinstance(stack, ipywidgets.Stack)
    assert control.index == 1 and stack.selected_index == 1 and control.description == "slope"
    assert list(control._options_labels) == ["-2.00", "0.50", "1.25"]  # what the browser shows: values
    pngs = [widgets.frame_png(frame) for frame in stack.children]
    assert all(png.startswith(b"\x89PNG") for png in pngs) and len(set(pngs)) == 3
    links = [w for w in ipywidgets.widgets.widget._instances.values() if isinstance(w, ipywidgets.widgets.widget_link.Link)
             and w.source == (control, "index") and w.target == (stack, "selected_index")]
    assert len(links) == 1                                       # a jslink: it runs in the browser
    assert plt.get_fignums() == []                               # figures were closed after rendering


def test_live_slider_recomputes_on_change():
    calls = []

    def fig_for(v):
        calls.append(v)
        return line_figure(v)

    box = widgets.slider(fig_for, [1, 2, 3], name="slope", live=True)
    control, out = box.children
    assert isinstance(out, ipywidgets.Output) and calls == [1]   # nothing precomputed beyond the first frame
    control.index = 2
    assert calls == [1, 3]


def test_colab_gets_the_live_slider_and_everywhere_else_the_stack(monkeypatch):
    """On Colab jslink between widgets does not run, so the default slider recomputes in the kernel there."""
    import sys
    import types

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert not widgets.on_colab()
    assert isinstance(widgets.slider(line_figure, [1, 2]).children[1], ipywidgets.Stack)
    colab = types.ModuleType("google.colab")                     # what a Colab runtime has imported
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    assert widgets.on_colab()
    control, shown = widgets.slider(line_figure, [1, 2]).children
    assert isinstance(shown, ipywidgets.Output)
    control.index = 1                                            # the kernel redraws: the live path
    assert isinstance(widgets.slider(line_figure, [1, 2], live=False).children[1], ipywidgets.Stack)
    assert plt.get_fignums() == []


@pytest.mark.parametrize("args,kwargs,err,match", [
    ((line_figure, []), {}, ValueError, "values must be a non-empty list"),
    ((line_figure, [1.0, 1.0000001]), {}, ValueError, "labels made by fmt from values must be distinct"),
    (("nope", [1]), {}, TypeError, "fn must be a function"),
    ((line_figure, [1, 2]), {"start": 2}, ValueError, "start must be an index below"),
    ((lambda v: v, [1, 2]), {}, TypeError, "fn must return a matplotlib figure"),
    ((line_figure, [1, 2]), {"live": 1}, TypeError, "live must be True or False"),
    ((line_figure, [1, 2]), {"alt": 3}, TypeError, "alt must be a string or a function"),
    ((line_figure, [1, 2]), {"alt": lambda v: v}, TypeError, "alt.value. must return a string"),
])
def test_bad_input(args, kwargs, err, match):
    with pytest.raises(err, match=match):
        widgets.slider(*args, **kwargs)


def test_frames_are_rendered_at_twice_their_displayed_width():
    """Sharp on a high-density screen: each frame's PNG has 2 pixels per displayed pixel (read with PIL-free struct,
    independently of widgets' own PNG reader)."""
    import struct

    import re

    box = widgets.slider(line_figure, [0.5, 1.0], name="slope")
    for frame in box.children[1].children:
        width_px, height_px = struct.unpack(">II", widgets.frame_png(frame)[16:24])   # the PNG IHDR chunk
        shown = int(re.search(r'<img [^>]*width="(\d+)"', frame.value).group(1))
        assert shown == width_px // 2 and height_px > 0
    one = widgets.figure_png(line_figure(1.0), dpi=80)
    two = widgets.figure_png(line_figure(1.0), dpi=80, scale=2)
    w1, w2 = struct.unpack(">I", one[16:20])[0], struct.unpack(">I", two[16:20])[0]
    assert abs(w2 - 2 * w1) <= 2                                   # the same figure, twice the pixels


def test_every_frame_has_alt_text_naming_the_figure_and_its_value():
    """A screen reader hears which value a frame shows and what it plots: an <img> alt per frame."""
    import html
    import re

    box = widgets.slider(line_figure, [-2.0, 0.5], name="slope", fmt="{:.2f}",
                         alt="A straight line from the origin with this slope")
    frames = box.children[1].children
    assert [widgets.frame_alt(f) for f in frames] == [
        "At slope = -2.00: A straight line from the origin with this slope",
        "At slope = 0.50: A straight line from the origin with this slope"]
    for frame in frames:                                   # one <img>, with its alt, nothing else
        tags = re.findall(r"<img [^>]*>", frame.value)
        assert len(tags) == 1 and 'alt="At slope = ' in tags[0]
    quoted = widgets.slider(line_figure, [1.0], alt='a "quoted" <b>label</b> & more').children[1].children[0]
    assert widgets.frame_alt(quoted) == 'At value = 1: a "quoted" <b>label</b> & more'   # escaped in the HTML
    assert "<b>" not in quoted.value and html.escape('"quoted"') in quoted.value
    per_value = widgets.slider(line_figure, [1.0, 2.0], alt=lambda s: f"rises to {2 * s:g}").children[1].children
    assert [widgets.frame_alt(f) for f in per_value] == ["At value = 1: rises to 2", "At value = 2: rises to 4"]


def test_frames_without_alt_are_described_from_their_titles_and_labels():
    def titled(slope):
        fig, (a, b) = plt.subplots(1, 2, figsize=(3, 2))
        fig.suptitle(f"slope {slope:g}")
        a.set_xlabel("$x$"); a.set_ylabel(r"$\log_{10}\|w_t - w_*\|$"); a.set_title("left")
        b.set_xlabel("time")
        return fig

    alt = widgets.frame_alt(widgets.slider(titled, [3], name="s").children[1].children[0])
    assert alt == "At s = 3: slope 3. Panel 1: left; log 10 ‖w t - w *‖ against x."
    assert "$" not in alt and "\\" not in alt
    bare = widgets.frame_alt(widgets.slider(line_figure, [1]).children[1].children[0])
    assert bare.startswith("At value = 1: ") and len(bare.split()) >= 5


def test_live_frames_have_alt_text_too(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj.data))
    box = widgets.slider(line_figure, [1, 2], name="slope", live=True, alt="a line")
    box.children[0].index = 1                                    # the kernel redraws with the new value
    assert len(shown) == 2 and 'alt="At slope = 1: a line"' in shown[0] and 'alt="At slope = 2: a line"' in shown[1]
