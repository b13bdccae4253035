"""The report page: a list of sections, each with tables, images or a note saying why it is empty.

Everything that comes from data is escaped. Images are PNG files next to the page,
referenced by relative path, so the folder can be copied anywhere as a whole.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Sequence

STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 70em; color: #222; }
h1 { border-bottom: 2px solid #888; }
section { margin-bottom: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #eef; }
td:first-child, th:first-child { text-align: left; }
.missing { color: #a33; font-weight: bold; }
.note { color: #555; }
img { max-width: 100%; border: 1px solid #ddd; }
"""


@dataclass
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[object]]


@dataclass
class Section:
    id: str
    title: str
    tables: list[Table] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)
    """(relative PNG path, alt text)"""
    notes: list[str] = field(default_factory=list)
    missing: str | None = None
    """Why this section has no data (an input was not found); shown in red."""


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return "" if v is None else str(v)


def render_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in t.headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row) + "</tr>" for row in t.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p class=\"note\">{html.escape(subtitle)}</p>",
        "<nav><ul>" + "".join(f'<li><a href="#{s.id}">{html.escape(s.title)}</a></li>' for s in sections) + "</ul></nav>",
    ]
    for s in sections:
        parts.append(f'<section id="{html.escape(s.id)}"><h2>{html.escape(s.title)}</h2>')
        if s.missing:
            parts.append(f'<p class="missing">not available: {html.escape(s.missing)}</p>')
        for note in s.notes:
            parts.append(f'<p class="note">{html.escape(note)}</p>')
        parts.extend(render_table(t) for t in s.tables)
        parts.extend(f'<p><img src="{html.escape(src)}" alt="{html.escape(alt)}"></p>' for src, alt in s.images)
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
