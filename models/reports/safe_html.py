"""Markdown to HTML for reports whose text carries users' data, as text and never as markup.

Why it exists. A model report quotes class names, category values, column names and (for
text datasets) headlines, all of them read from a user's file. Python-Markdown passes raw HTML
through and turns `[x](javascript:...)` into a live link, so a value such as
`<img src=x onerror=...>` would run in the browser of whoever opens the report. Two layers:
raw HTML in the Markdown is shown as text (its block and inline handlers are removed), and
the HTML that comes out is cleaned by nh3 (the ammonia sanitiser) to the tags a report uses,
with safe link schemes and only the `text-align` style tables need.
"""

from __future__ import annotations

import markdown
import nh3
from markdown.extensions import Extension

TAGS = {"h1", "h2", "h3", "h4", "p", "ul", "ol", "li", "strong", "em", "code", "pre",
        "table", "thead", "tbody", "tr", "th", "td", "img", "a", "br", "hr", "blockquote"}
ATTRIBUTES = {"img": {"src", "alt"}, "a": {"href"}, "th": {"style"}, "td": {"style"}}


class RawHtmlAsText(Extension):
    """Python-Markdown without its raw-HTML handling: `<b>` in the text reads `<b>`."""

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")


def markdown_html(text: str) -> str:
    """The HTML body of Markdown `text` (tables included), safe to open in a browser."""
    body = markdown.markdown(text, extensions=["tables", RawHtmlAsText()])
    return nh3.clean(body, tags=TAGS, attributes=ATTRIBUTES,
                     filter_style_properties={"text-align"}, link_rel="noopener noreferrer",
                     url_schemes={"http", "https", "mailto"})
