"""Matplotlib figures as SVG text: deterministic, text kept as text, no metadata or URLs.

Shared by the report (SVG inlined in HTML5, which needs no namespace) and the command line
(standalone .svg files, which keep only the SVG namespace: viewers need it and never fetch it).
"""

from __future__ import annotations

import io
import re
from typing import Any

__all__ = ["SVG_NAMESPACE", "figure_to_svg"]

SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def figure_to_svg(fig: Any, *, standalone: bool = False) -> str:
    """Serialise and close ``fig``; ``standalone`` adds the XML prolog and the SVG namespace."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]  # the prolog and DOCTYPE (which names a DTD URL) go
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    svg = svg.replace("xlink:href", "href")
    if standalone:
        svg = svg.replace("<svg", f'<svg xmlns="{SVG_NAMESPACE}"', 1)
        svg = '<?xml version="1.0" encoding="utf-8" standalone="no"?>\n' + svg
    return svg
