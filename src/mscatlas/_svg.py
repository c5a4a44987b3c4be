"""Matplotlib figures as SVG text: deterministic, text kept as text, no metadata or URLs.

Shared by the report (SVG inlined in HTML5, which needs no namespace) and the command line
(standalone .svg files, which keep only the SVG namespace: viewers need it and never fetch it).
"""

from __future__ import annotations

import io
import re
from typing import Any

__all__ = ["SVG_NAMESPACE", "csp_safe_svg", "figure_to_svg"]

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


_STYLE_ATTR = re.compile(r'\sstyle="([^"]*)"')
_STYLE_ELEMENT = re.compile(r"<style[^>]*>.*?</style>", re.DOTALL)
_PROPERTY = re.compile(r"[a-z-]+")


def csp_safe_svg(svg: str) -> str:
    """Inline SVG that renders under a CSP without inline styles (``style-src 'self'``).

    Matplotlib writes ``style="fill: ...; stroke: ..."`` attributes and a ``<style>`` element,
    which the browser ignores under that policy. Every one of those properties is also an SVG
    presentation attribute, so each becomes one (``fill="..." stroke="..."``); the element's one
    rule (``*{stroke-linejoin: round; stroke-linecap: butt}``) moves to the root, where it is
    inherited.
    """

    def attributes(match: re.Match[str]) -> str:
        out = []
        for declaration in match.group(1).split(";"):
            name, _, value = declaration.partition(":")
            name, value = name.strip(), value.strip()
            if _PROPERTY.fullmatch(name) and value:
                out.append(f' {name}="{value}"')
        return "".join(out)

    svg = _STYLE_ELEMENT.sub("", svg)
    svg = _STYLE_ATTR.sub(attributes, svg)
    return svg.replace("<svg", '<svg stroke-linejoin="round" stroke-linecap="butt"', 1)
