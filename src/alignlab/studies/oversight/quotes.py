"""Quotes from the support passage: consultants and debaters write them between <quote></quote>
tags; each is checked against the passage by string match and shown to the judge marked as
verified or unverified."""

from __future__ import annotations

import re

QUOTE_RE = re.compile(r"<quote>(.*?)(?:</quote>|$)", re.S)


def normalize_quote_text(text: str) -> str:
    """Lower case, whitespace runs collapsed to one space, stripped."""
    return " ".join(str(text).lower().split())


def verify_quote(quote: str, passage: str) -> bool:
    """True when the quote occurs in the passage verbatim, up to whitespace and case; a quote with
    one changed word, or an empty one, is unverified."""
    q = normalize_quote_text(quote)
    return bool(q) and q in normalize_quote_text(passage)


def mark_quotes(text: str, passage: str) -> tuple[str, list[dict]]:
    """The argument as the judge sees it: every <quote>x</quote> (or an unclosed one, cut by the
    token bound) becomes `"x" (verified quote)` or `"x" (unverified quote)`. Returns (text, quotes)."""
    quotes = []

    def replace(match):
        quote = match.group(1).strip()
        ok = verify_quote(quote, passage)
        quotes.append({"quote": quote, "verified": ok})
        return f"\"{quote}\" ({'verified' if ok else 'unverified'} quote)"

    return QUOTE_RE.sub(replace, text), quotes
