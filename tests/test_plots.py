"""Every figure neurosim draws is laid out to fit: rendered, no title, label, tick label or legend
text lies outside the canvas; each has a title and labelled axes; a variant keeps its colour."""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

import neurosim as ns
from neurosim import complexity, hardware, plotting

matplotlib.use("Agg")


def _outside(figure) -> list:
    """Parts of the drawn figure (per axes, and the legends and titles around them) that leave the
    canvas by more than a pixel: ``[(what, extent in pixels)]``. Uses the extents matplotlib's
    renderer gives for what it actually draws (the same ones ``bbox_inches="tight"`` uses)."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    box = figure.bbox
    found = []
    parts = [(f"axes {ax.get_title() or index}", ax) for index, ax in enumerate(figure.axes)]
    parts += [(f"text {text.get_text()!r}", text) for text in figure.texts]
    parts += [("legend", legend) for legend in figure.legends]
    if figure._suptitle is not None:
        parts.append(("suptitle", figure._suptitle))
    for what, artist in parts:
        if not artist.get_visible():
            continue
        extent = artist.get_tightbbox(renderer) if hasattr(artist, "get_tightbbox") else \
            artist.get_window_extent(renderer)
        if extent is None:
            continue
        if (extent.x0 < box.x0 - 1 or extent.y0 < box.y0 - 1 or extent.x1 > box.x1 + 1
                or extent.y1 > box.y1 + 1):
            found.append((what, tuple(round(v) for v in extent.extents)))
    return found


def _titled_and_labelled(figure):
    axes = [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]
    assert any(ax.get_title() for ax in axes) or figure._suptitle is not None
    for ax in axes:
        if ax.has_data() or ax.images:
            assert ax.get_xlabel() or ax.get_xticklabels(), "an axis without a label"
            assert ax.get_ylabel(), f"a y axis without a label ({ax.get_title()})"


def _digits_history(variant="il"):
    data = ns.datasets.digits().subset(n_train=200, n_test=100)
    net = ns.mlp([64, 16, 10], seed=0)
    return ns.train(net, ns.variant(variant, T=5) if variant == "il" else ns.variant(variant), data,
                    epochs=3, progress=False)


def _small():
    net = ns.mlp([6, 8, 5, 3], seed=0)
    rng = np.random.default_rng(0)
    return net, rng.normal(size=(4, 6)), rng.normal(size=(4, 3))


def _energy_trace_plot():
    net, x, y = _small()
    return ns.Simulator(net, ns.variant("il", T=10)).run(x, y).plot_energy().figure


def _events_plot():
    net, x, y = _small()
    return ns.Simulator(net, ns.variant("il", T=10), events=ns.events.SendOnDelta(0.01)).run(x, y).events.plot().figure


def _mapping_plot():
    net, x, y = _small()
    mapping = hardware.map(net, "il", "loihi")
    return mapping.plot(mapping.cost(x, y))


def _energy_plot():
    net, x, y = _small()
    costs = [hardware.map(net, name, "loihi").cost(x, y) for name in ("il", "bp")]
    return hardware.plot_energy(costs).figure


# built inside each test: another test's plt.close("all") would take a prebuilt figure's canvas
FIGURES = {
    "History.plot": lambda: _digits_history().plot(),
    "Trace.plot_energy": _energy_trace_plot,
    "Comparison.plot": lambda: complexity.compare(["bp", "il", "zil"], depths=range(2, 5), width=8).plot(),
    "Measurement.plot_timeline": lambda: complexity.measure(ns.mlp([8] * 12 + [3]), "il").plot_timeline().figure,
    "EventTrace.plot": _events_plot,
    "Mapping.plot": _mapping_plot,
    "hardware.plot_energy": _energy_plot,
}


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_fits_its_canvas(name):
    figure = FIGURES[name]()
    try:
        assert not _outside(figure), f"{name}: text outside the canvas: {_outside(figure)}"
        _titled_and_labelled(figure)
    finally:
        plt.close(figure)


def test_a_variant_keeps_its_colour_across_panels_and_figures():
    history = _digits_history("zil")
    figure = history.plot()
    colours = {line.get_color() for ax in figure.axes for line in ax.get_lines()}
    assert colours == {plotting.COLOURS["zil"]}
    comparison = complexity.compare(["bp", "zil"], depths=range(2, 4), width=8).plot()
    lines = {line.get_label(): line for ax in comparison.axes for line in ax.get_lines()}
    assert lines["zil"].get_color() == plotting.COLOURS["zil"]
    # Z-IL lies on BP: a different marker and line style keep it visible
    assert lines["zil"].get_marker() != lines["bp"].get_marker()
    assert lines["zil"].get_linestyle() != lines["bp"].get_linestyle()
    plt.close("all")


def test_a_loss_that_moves_little_still_has_readable_ticks():
    figure = _digits_history().plot()
    loss_axis = figure.axes[0]
    figure.canvas.draw()
    labels = [t for t in loss_axis.get_yticklabels() if t.get_text() and t.get_visible()
              and loss_axis.get_ylim()[0] <= t.get_position()[1] <= loss_axis.get_ylim()[1]]
    assert len(labels) >= 3
    plt.close(figure)
