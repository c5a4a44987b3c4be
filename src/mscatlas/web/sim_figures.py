"""The curves of a simulation's result as inline SVG, for the web lab's job pages.

Drawn with matplotlib's object API under one lock (its global state is not thread-safe, and the
app runs simulations in a thread pool), then made to render under the app's Content Security
Policy by :func:`mscatlas._svg.csp_safe_svg`.
"""

from __future__ import annotations

import threading
from typing import Any

from mscatlas._svg import csp_safe_svg, figure_to_svg

__all__ = ["draw"]

_PLOT_LOCK = threading.Lock()  # matplotlib's global state is not thread-safe
_RC = {"svg.fonttype": "none", "svg.hashsalt": "mscatlas-sim", "font.size": 9}


def _plot_in_vitro(result: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    s = result["series"]
    fig = Figure(figsize=(9.0, 3.4))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(s["time_h"], s["control"]["viable_cells"], color="0.4", label="control")
    ax1.plot(s["time_h"], s["treated"]["viable_cells"], color="#1f5fa8", label="treated")
    ax1.set_xlabel("hours")
    ax1.set_ylabel("viable cancer cells")
    ax1.set_title("Viable cancer cells", fontsize=10)
    ax1.legend(fontsize=8, frameon=False)
    ax2.plot(s["time_h"], s["inhibition_percent"], color="#1c7c4a")
    ax2.axhline(0.0, color="0.6", lw=0.8)
    ax2.set_xlabel("hours")
    ax2.set_ylabel("% inhibition vs control")
    ax2.set_title("Inhibition (positive: fewer cells)", fontsize=10)
    fig.tight_layout()
    return figure_to_svg(fig, standalone=False)


def _plot_xenograft(result: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.figure import Figure

    s = result["series"]
    days = np.asarray(s["day"])
    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.subplots()
    for arm, color in (("control", "0.4"), ("treated", "#1f5fa8")):
        mean = np.asarray(s[f"{arm}_mean_mm3"])
        sd = np.asarray(s[f"{arm}_sd_mm3"])
        ax.plot(days, mean, color=color, label=f"{arm} (mean ± sd)")
        ax.fill_between(days, mean - sd, mean + sd, color=color, alpha=0.15, lw=0)
    for day in result["schedule_days"]:
        ax.axvline(day, color="#8a5a00", lw=0.7, ls=":")
    ax.set_xlabel("days")
    ax.set_ylabel("tumour volume (mm³)")
    ax.set_title(f"Tumour volume, TGI {result['tgi_percent']:.1f}% (dotted: injections)", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return figure_to_svg(fig, standalone=False)


def draw(result: dict[str, Any]) -> str:
    """The curves of a run's result as inline SVG that renders under the app's CSP."""
    import matplotlib

    with _PLOT_LOCK, matplotlib.rc_context(_RC):
        svg = _plot_in_vitro(result) if result["kind"] == "in_vitro" else _plot_xenograft(result)
    return csp_safe_svg(svg)
