"""The one HTML page frame and style sheet of the platform's own reports (KPI report, audience summary):
self-contained files a marketer opens from a folder or an e-mail, no external assets."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import pandas as pd

CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:75em}
h2{margin-top:1.6em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}
.note{color:#555;max-width:60em}.drift{color:#b00020;font-weight:bold}.ok{color:#1b5e20}img{max-width:100%}
.scroll{overflow-x:auto;max-width:100%}.big{font-size:1.3em}"""


def page(title: str, body: str) -> str:
    """A complete HTML document: the title (escaped), the style sheet and the body as given."""
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def header(name: object) -> str:
    """A column name as a reader reads it: snake_case to a sentence ("arm_customers": "Arm customers")."""
    text = str(name).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def frame_table(frame: pd.DataFrame, index: bool = True, float_format: str = "{:.3f}") -> str:
    """A data frame as an HTML table (values escaped by pandas) with readable headers and one header
    row (no axis names), inside a block that scrolls sideways rather than widening the page."""
    shown = frame.rename(columns=header).rename_axis(index=None, columns=None)
    if index:
        shown = shown.rename(index=header)
    table = shown.to_html(index=index, float_format=float_format.format, na_rep="", border=0)
    return f'<div class="scroll">{table}</div>'


def chart(figure, alt: str) -> str:
    """A matplotlib figure as an embedded PNG whose alt text says what it shows."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="{html.escape(alt, quote=True)}" src="data:image/png;base64,{data}">'


def link(target: str | Path, page_path: Path, text: str) -> str:
    """A link from the report at `page_path` to a file beside it (relative, so the folder can move)."""
    relative = os.path.relpath(Path(target), page_path.parent)
    return f'<a href="{html.escape(relative, quote=True)}">{html.escape(text)}</a>'
