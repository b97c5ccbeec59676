"""Write a :class:`~planner.report.document.Document` as one self-contained HTML page or as Markdown.

HTML: inline CSS and inline SVG figures, no script, no external request; readable from 320 px wide up
(tables scroll inside their own box, figures scale). Markdown: the same text, figures as SVG files beside
it. Output is deterministic except the one "generated" line.
"""

from __future__ import annotations

import html
import re

from planner.report.document import Bullets, Document, Figure, Para, Table

CSS = """
:root { color-scheme: light; --fg: #1a1a1a; --muted: #5a5a5a; --accent: #D55E00; --line: #d8d8d8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); background: #fff; }
main { max-width: 62rem; margin: 0 auto; padding: 1rem 1rem 3rem; }
h1 { font-size: 1.45rem; line-height: 1.25; margin: 0.5rem 0 0.25rem; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 2rem 0 0.5rem; padding-top: 0.5rem; border-top: 1px solid var(--line); }
p { margin: 0.5rem 0; overflow-wrap: anywhere; }
p.generated, p.summary { color: var(--muted); font-size: 0.85rem; margin: 0; }
p.lead { font-size: 1.05rem; font-weight: 600; }
p.warning { border-left: 4px solid var(--accent); padding: 0.25rem 0.6rem; background: #fff4ec; }
p.note { color: var(--muted); font-size: 0.9rem; }
nav ol { padding-left: 1.2rem; margin: 0.5rem 0; columns: 2 14rem; font-size: 0.9rem; }
figure { margin: 1rem 0; }
figure svg { display: block; width: 100%; height: auto; max-width: 52rem; }
figcaption { font-size: 0.88rem; color: var(--muted); margin-top: 0.3rem; }
.table { overflow-x: auto; margin: 0.75rem 0; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.82rem; min-width: 50%; }
caption { text-align: left; color: var(--muted); padding-bottom: 0.3rem; caption-side: top; }
th, td { padding: 0.2rem 0.5rem; border-bottom: 1px solid var(--line); vertical-align: top; text-align: left; }
th { background: #f5f5f5; white-space: nowrap; }
td.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.hl td { background: #fff1e6; font-weight: 600; }
ul { padding-left: 1.2rem; }
li { overflow-wrap: anywhere; }
@media (max-width: 40rem) { body { font-size: 14px; } main { padding: 0.6rem; } }
""".strip()

_NUM = ' class="n"'
_SVG_ROOT = re.compile(r"<svg\b[^>]*>", re.S)


def inline_svg(svg: str, *, label_id: str) -> str:
    """``svg`` (a matplotlib document) ready to sit in HTML: no XML prolog or doctype, no fixed size (it
    scales with its viewBox), ``role="img"`` labelled by the caption."""
    start = svg.find("<svg")
    body = svg[start:]
    root = _SVG_ROOT.match(body)
    if root is None:  # pragma: no cover - matplotlib always writes one root element
        raise ValueError("not an SVG document")
    tag = root.group(0)
    tag = re.sub(r'\s(width|height)="[^"]*"', "", tag)
    tag = tag.replace("<svg", f'<svg role="img" aria-labelledby="{label_id}"', 1)
    return tag + body[root.end():]


def to_html(doc: Document, *, generated: str) -> str:
    """The document as one HTML page; ``generated`` is the one line that may differ between runs."""
    out = ['<!DOCTYPE html>', '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{html.escape(doc.title)}</title>",
           f'<meta name="generator" content="clipbudget {html.escape(doc.version)}">',
           f"<style>\n{CSS}\n</style>", "</head>", "<body>", "<main>",
           f"<h1>{html.escape(doc.title)}</h1>", f'<p class="summary">{html.escape(doc.summary)}</p>',
           f'<p class="generated">{html.escape(generated)}</p>',
           '<nav aria-label="contents"><ol>']
    out += [f'<li><a href="#{s.id}">{html.escape(s.title)}</a></li>' for s in doc.sections]
    out.append("</ol></nav>")
    fig_no = 0
    for s in doc.sections:
        out.append(f'<section id="{s.id}">')
        out.append(f"<h2>{html.escape(s.title)}</h2>")
        for b in s.blocks:
            if isinstance(b, Figure):
                fig_no += 1
                cid = f"fig-{b.name}-caption"
                out.append(f'<figure id="fig-{b.name}">')
                out.append(inline_svg(b.svg, label_id=cid))
                out.append(f'<figcaption id="{cid}"><strong>Figure {fig_no}.</strong> {html.escape(b.caption)}'
                           "</figcaption>")
                out.append("</figure>")
            else:
                out.append(_html_block(b))
        out.append("</section>")
    out += ["</main>", "</body>", "</html>", ""]
    return "\n".join(out)


def _html_block(b) -> str:
    if isinstance(b, Para):
        cls = "" if b.kind == "p" else f' class="{b.kind}"'
        prefix = "Warning: " if b.kind == "warning" else ""
        return f"<p{cls}>{html.escape(prefix + b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Table):
        rows = []
        head = "".join(f'<th scope="col">{html.escape(c)}</th>' for c in b.columns)
        for i, r in enumerate(b.rows):
            cls = ' class="hl"' if i in b.highlight else ""
            cells = "".join(f"<td{_NUM if j in b.numeric else ''}>{html.escape(str(v))}</td>"
                            for j, v in enumerate(r))
            rows.append(f"<tr{cls}>{cells}</tr>")
        cap = f"<caption>{html.escape(b.caption)}</caption>" if b.caption else ""
        return (f'<div class="table"><table>{cap}<thead><tr>{head}</tr></thead><tbody>'
                + "".join(rows) + "</tbody></table></div>")
    raise TypeError(f"unknown block {type(b).__name__}")  # pragma: no cover


def _md_cell(v: object) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document, *, generated: str, figure_dir: str) -> tuple[str, dict[str, str]]:
    """The document as Markdown and its figures as ``{file name: SVG}``, linked as ``figure_dir/<name>.svg``."""
    out = [f"# {doc.title}", "", f"_{doc.summary}_", "", f"_{generated}_", ""]
    files: dict[str, str] = {}
    fig_no = 0
    for s in doc.sections:
        out += [f"## {s.title}", ""]
        for b in s.blocks:
            if isinstance(b, Figure):
                fig_no += 1
                name = f"{fig_no:02d}-{b.name}.svg"
                files[name] = b.svg
                out += [f"![{b.alt}]({figure_dir}/{name})", "", f"**Figure {fig_no}.** {b.caption}", ""]
            elif isinstance(b, Para):
                text = b.text
                if b.kind == "lead":
                    text = f"**{text}**"
                elif b.kind == "warning":
                    text = f"> **Warning:** {text}"
                elif b.kind == "note":
                    text = f"_{text}_"
                out += [text, ""]
            elif isinstance(b, Bullets):
                out += [f"- {i}" for i in b.items] + [""]
            elif isinstance(b, Table):
                if b.caption:
                    out += [b.caption, ""]
                out.append("| " + " | ".join(_md_cell(c) for c in b.columns) + " |")
                out.append("|" + "|".join("---:" if j in b.numeric else "---" for j in range(len(b.columns))) + "|")
                for i, r in enumerate(b.rows):
                    cells = [_md_cell(v) for v in r]
                    if i in b.highlight:
                        cells = [f"**{c}**" if c else c for c in cells]
                    out.append("| " + " | ".join(cells) + " |")
                out.append("")
    return "\n".join(out), files
