"""Sanitising the HTML that staff write, so a notice can never carry script.

Staff pages accept rich text (申报通知, 申报引导). It is cleaned with nh3 when saved
and once more when rendered, so a row written before a rule change, or by hand in
the database, is still safe on the page.
"""

from __future__ import annotations

import nh3

TAGS = frozenset(
    {
        "a",
        "b",
        "blockquote",
        "br",
        "caption",
        "code",
        "div",
        "em",
        "h2",
        "h3",
        "h4",
        "hr",
        "i",
        "img",
        "li",
        "ol",
        "p",
        "pre",
        "s",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
    }
)
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
SCHEMES = frozenset({"http", "https", "mailto", "tel"})


def clean(html: str) -> str:
    """The HTML with every tag, attribute and URL scheme outside the lists removed."""
    return nh3.clean(
        html,
        tags=set(TAGS),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        url_schemes=set(SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
