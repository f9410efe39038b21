"""The one HTML page frame and style sheet of the platform's own reports (KPI report, audience summary):
self-contained files a marketer opens from a folder or an e-mail, no external assets."""

from __future__ import annotations

import html

import pandas as pd

CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:75em}
h2{margin-top:1.6em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}
.note{color:#555;max-width:60em}.drift{color:#b00020;font-weight:bold}.ok{color:#1b5e20}img{max-width:100%}"""


def page(title: str, body: str) -> str:
    """A complete HTML document: the title (escaped), the style sheet and the body as given."""
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def frame_table(frame: pd.DataFrame, index: bool = True, float_format: str = "{:.3f}") -> str:
    """A data frame as an HTML table (values escaped by pandas)."""
    return frame.to_html(index=index, float_format=float_format.format, na_rep="", border=0)
