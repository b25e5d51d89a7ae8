"""One look for every figure neurosim draws: a colour, marker and line style per variant, the same
in every panel and every figure of a run, so curves that coincide (Z-IL on BP) stay told apart.

    style = plotting.style("zil")     # {"color": ..., "marker": ..., "linestyle": ...}
    ax.plot(x, y, label="zil", **style)
"""
from __future__ import annotations

# Okabe-Ito colours (distinguishable with colour-vision deficiencies), fixed per variant
COLOURS = {
    "bp": "#000000", "zil": "#E69F00", "il": "#0072B2", "fpa": "#009E73", "seqil": "#CC79A7",
    "ipc": "#D55E00", "ilprox": "#56B4E9", "ilprox_fast": "#56B4E9", "implicit_sgd": "#F0E442",
    "copi": "#999999",
}
MARKERS = {"bp": "o", "zil": "x", "il": "s", "fpa": "^", "seqil": "D", "ipc": "v", "ilprox": "P",
           "ilprox_fast": "p", "implicit_sgd": "*", "copi": "h"}
LINESTYLES = {"bp": "-", "zil": "--", "il": "-", "fpa": "-.", "seqil": ":", "ipc": "-", "ilprox": "--",
              "ilprox_fast": ":", "implicit_sgd": "-.", "copi": ":"}
_FALLBACK = ["#332288", "#88CCEE", "#44AA99", "#117733", "#DDCC77", "#CC6677", "#AA4499", "#882255"]


def style(variant: str) -> dict:
    """``{"color", "marker", "linestyle"}`` for ``variant`` (a name, or a label starting with one)."""
    name = str(variant).split()[0].split("(")[0].strip(",")
    if name in COLOURS:
        return {"color": COLOURS[name], "marker": MARKERS[name], "linestyle": LINESTYLES[name]}
    index = sum(map(ord, name)) % len(_FALLBACK)
    return {"color": _FALLBACK[index], "marker": "o", "linestyle": "-"}


def save(figure, path, dpi: int = 120) -> None:
    """Save with a tight bounding box, so no title or label is cut off."""
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
