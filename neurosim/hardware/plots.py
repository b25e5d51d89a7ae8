"""Figures of a mapping: the cores as a grid coloured by load, and energy by category."""
from __future__ import annotations

import numpy as np

from .cost import CATEGORIES, _si

COLOURS = {"synaptic": "#4c72b0", "neuron_update": "#55a868", "messages": "#c44e52", "weight_update": "#8172b2"}


def plot_mapping(mapping, cost=None, axes=None):
    """Left: every used core at its mesh place, coloured by synaptic memory used (or, with a
    ``cost``, by busy time), chips side by side. Right (with a ``cost``): energy by category."""
    import matplotlib.pyplot as plt

    spec = mapping.spec
    panels = 2 if cost is not None else 1
    if axes is None:
        fig, axes = plt.subplots(1, panels, figsize=(5.6 * panels + 1.5 * (panels - 1), 3.8), squeeze=False,
                                 gridspec_kw={"width_ratios": [1.2, 1][:panels]}, layout="constrained")
        axes = list(axes[0])
    else:
        axes = list(np.atleast_1d(axes))
        fig = axes[0].figure
    per_tile = int(spec.core["cores_per_tile"].value)
    side = int(np.ceil(np.sqrt(per_tile)))
    width = int(spec.core["mesh_width"].value) * side
    height = int(spec.core["mesh_height"].value) * side
    grid = np.full((height, width * mapping.chips + (mapping.chips - 1)), np.nan)
    if cost is not None:
        load, label = cost.busy / max(cost.latency_s, 1e-300), "fraction of the step spent computing"
    else:
        load = np.array([core.memory_bytes for core in mapping.cores]) / spec.core["synaptic_memory"].value
        label = "synaptic memory used"
    for core, value in zip(mapping.cores, load):
        local = core.index % int(spec.core["cores_per_chip"].value)
        sub = local % per_tile
        row = core.y * side + sub // side
        col = core.chip * (width + 1) + core.x * side + sub % side
        grid[row, col] = value
        names = sorted({_short(name) for name, _, _ in core.slices})
        axes[0].text(col, row, "\n".join(names[:2]) + ("+" if len(names) > 2 else ""), ha="center",
                     va="center", fontsize=5, color="w")
    image = axes[0].imshow(grid, cmap="viridis", vmin=0, vmax=max(1.0, np.nanmax(grid) if np.isfinite(grid).any() else 1),
                           interpolation="nearest")
    axes[0].set_title(f"{mapping.n_cores} of {mapping.chips * int(spec.core['cores_per_chip'].value)} "
                      f"{spec.title} cores used")
    axes[0].set_xlabel("mesh x (chips side by side)")
    axes[0].set_ylabel("mesh y")
    fig.colorbar(image, ax=axes[0], label=label, shrink=0.8, fraction=0.05)
    if cost is not None:
        plot_energy([cost], ax=axes[1])
    return fig


def _short(population: str) -> str:
    """``error[2]`` -> ``e2``, ``decorrelated[1]`` -> ``d1``."""
    kind, _, rest = population.partition("[")
    return kind[0] + rest.rstrip("]")


def plot_energy(costs, ax=None, labels=None, processors=True):
    """Stacked bars of energy by category, one per cost, with the energy of the same MACs on
    conventional processors as open markers. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(max(5.5, 1.1 * len(costs) + 4.5), 3.8), layout="constrained")
    labels = labels or [f"{cost.variant}\n{cost.chip}" for cost in costs]
    peak = max([cost.total_energy_j for cost in costs]
               + [value for cost in costs for value in cost.processor_energy_j.values()] + [1e-300])
    scale, prefix = next(((s, p) for s, p in ((1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"))
                          if peak >= s), (1e-15, "f"))
    positions = np.arange(len(costs))
    bottom = np.zeros(len(costs))
    for category in CATEGORIES:
        heights = np.array([cost.energy_j.get(category, 0.0) for cost in costs]) / scale
        ax.bar(positions, heights, bottom=bottom, width=0.6, color=COLOURS[category],
               label=category.replace("_", " "))
        bottom += heights
    if processors:
        names = sorted({name for cost in costs for name in cost.processor_energy_j})
        for marker, name in zip(("o", "s", "^", "D", "v"), names):
            ax.scatter(positions + 0.38, [cost.processor_energy_j.get(name, np.nan) / scale for cost in costs],
                       marker=marker, color="k", facecolors="none", zorder=3, label=f"same MACs: {name}")
    ax.set_xticks(positions, labels)
    ax.set_xlim(-0.6, len(costs) - 0.2)
    ax.set_ylabel(f"energy per step ({prefix}J)")
    ax.set_title("energy by category" if len(costs) == 1 else "energy per step, by category")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    for position, cost in zip(positions, costs):
        ax.annotate(_si(cost.total_energy_j, "J"), (position, bottom[position]), ha="center", va="bottom",
                    fontsize=7)
    ax.set_ylim(0, max(bottom.max(), 1e-300) * 1.15)
    return ax
