"""One document model for every report: built once, written as Markdown and as HTML.

A report is a title and a list of blocks (headings, paragraphs, bullet lists, tables,
figures, preformatted text). :meth:`Document.markdown` and :meth:`Document.html` render
the same blocks, so the two files cannot drift apart, and :meth:`Document.write` writes
both atomically (``rewardherd.io.write_atomic``). Paragraph and bullet text may use
Markdown's ``**bold**`` and ```code``` inline marks; HTML escapes everything else.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rewardherd.io import write_text_atomic

#: The one style sheet of every HTML report. ``.reproduced`` / ``.not`` shade verdict cells.
STYLE = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px}"
         "th{background:#f3f3f3}img{max-width:100%}figure{margin:1em 0}pre{background:#f6f6f6;padding:1em;"
         "overflow:auto;font-size:12px}.reproduced{background:#e6f4e6}.not{background:#fbe3e3}")

#: Verdict cells HTML shades (cell text -> class).
VERDICT_CLASSES = {"reproduced": "reproduced", "not reproduced": "not"}


def interval_text(estimate: float, low: float, high: float) -> str:
    """An estimate with its interval as every report prints it: ``+0.123 [-0.010, +0.256]``."""
    return f"{estimate:+.3f} [{low:+.3f}, {high:+.3f}]"


def md_table(df: pd.DataFrame, index: bool = False) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    if index:
        df = df.reset_index()
    cols = [" / ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def inline_html(s: str) -> str:
    """``s`` escaped for HTML, with Markdown's **bold** and `code` marks rendered."""
    s = html.escape(s)
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", re.sub(r"`(.+?)`", r"<code>\1</code>", s))


def _table_html(df: pd.DataFrame, index: bool, shade: bool) -> str:
    out = df.to_html(index=index, escape=True)
    if shade:
        for text, cls in VERDICT_CLASSES.items():
            out = out.replace(f"<td>{text}</td>", f'<td class="{cls}">{text}</td>')
    return out


@dataclass
class Document:
    """A report's blocks, in order; add them with the methods below, then :meth:`write`."""

    title: str
    blocks: list[tuple] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> Document:
        self.blocks.append(("heading", text, level))
        return self

    def paragraph(self, text: str) -> Document:
        """A paragraph; nothing is added for empty text."""
        if text:
            self.blocks.append(("paragraph", text))
        return self

    def bullets(self, items) -> Document:
        self.blocks.append(("bullets", [str(x) for x in items]))
        return self

    def table(self, df: pd.DataFrame, *, index: bool = False, shade_verdicts: bool = False,
              empty: str | None = None) -> Document:
        """A table; an empty one renders ``empty`` as a paragraph when given, else nothing."""
        if df.empty:
            return self.paragraph(empty or "")
        self.blocks.append(("table", df, index, shade_verdicts))
        return self

    def figure(self, path: Path, alt: str, caption: str = "", *, relative_to: Path | None = None) -> Document:
        """A PNG: linked by its path relative to the report in Markdown, embedded in HTML."""
        self.blocks.append(("figure", Path(path), alt, caption, relative_to))
        return self

    def preformatted(self, text: str, language: str = "") -> Document:
        self.blocks.append(("pre", text, language))
        return self

    def markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        for b in self.blocks:
            kind = b[0]
            if kind == "heading":
                lines += ["#" * b[2] + " " + b[1], ""]
            elif kind == "paragraph":
                lines += [b[1], ""]
            elif kind == "bullets":
                lines += [f"- {x}" for x in b[1]] + [""]
            elif kind == "table":
                lines += [md_table(b[1], index=b[2]), ""]
            elif kind == "figure":
                path, alt, caption, rel = b[1:]
                link = path.relative_to(rel).as_posix() if rel is not None else path.as_posix()
                lines += [f"![{alt}]({link})", ""] + ([f"*{caption}*", ""] if caption else [])
            else:
                lines += [f"```{b[2]}", b[1], "```", ""]
        return "\n".join(lines)

    def html(self) -> str:
        parts = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>{html.escape(self.title.replace('`', ''))}</title>",
                 f"<style>{STYLE}</style></head><body>", f"<h1>{inline_html(self.title)}</h1>"]
        for b in self.blocks:
            kind = b[0]
            if kind == "heading":
                parts.append(f"<h{b[2]}>{inline_html(b[1])}</h{b[2]}>")
            elif kind == "paragraph":
                parts.append(f"<p>{inline_html(b[1])}</p>")
            elif kind == "bullets":
                parts.append("<ul>" + "".join(f"<li>{inline_html(x)}</li>" for x in b[1]) + "</ul>")
            elif kind == "table":
                parts.append(_table_html(b[1], b[2], b[3]))
            elif kind == "figure":
                path, alt, caption = b[1], b[2], b[3]
                img = base64.b64encode(path.read_bytes()).decode()
                cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
                parts.append(f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{img}">{cap}</figure>')
            else:
                parts.append(f"<pre>{html.escape(b[1])}</pre>")
        return "".join(parts + ["</body></html>"])

    def write(self, out: Path, stem: str = "report") -> Path:
        """Write ``<out>/<stem>.md`` and ``<out>/<stem>.html`` atomically; returns the HTML path."""
        out = Path(out)
        for suffix, text in ((".md", self.markdown()), (".html", self.html())):
            write_text_atomic(out / f"{stem}{suffix}", text)
        return out / f"{stem}.html"
