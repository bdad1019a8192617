"""Escaping data for Markdown: crawl-derived strings in the Prefect artifacts.

Source names, domains, URLs, paths and the verdict reasons that quote them come from the crawl or
the user's inputs. Put raw into Markdown, ``<img src=x onerror=...>`` reaches the renderer as
HTML, a ``|`` splits a table cell, a newline ends a table row (or starts a heading), and
``[text](url)`` becomes a link. :func:`md_escape` makes such a value print as the literal text it
is, in running text and in table cells alike (Prefect's UI renders table artifact cells as
Markdown too, prefect-ui-library#2190). Bare URLs (``https://...``, ``www....``) stay as they
are: a renderer that auto-links them (GitHub-flavoured Markdown) shows the crawl's own URL as a
link, which is what it is.
"""

from __future__ import annotations

import html
import re

# Backslash first, so the escapes added below are not themselves escaped. `|` splits table cells;
# the others start code spans, emphasis, links and images (`![`) when the renderer sees them.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\u2028\u2029]")


def md_escape(value: object) -> str:
    """``value`` as literal Markdown text, safe inside a table cell.

    ``&``, ``<`` and ``>`` become HTML entities (no raw HTML, no ``<autolink>``); ``\\``, backtick,
    ``*``, ``_``, ``[``, ``]``, ``|`` and ``~`` get a backslash; line breaks become spaces (a
    table row is one line). ``None`` prints as ``n/a``; numbers print as ``str()`` gives them.
    """
    if value is None:
        return "n/a"
    text = html.escape(str(value), quote=False)
    text = _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
    return _LINE_BREAKS.sub(" ", text)
