"""Quotes from the support passage: consultants and debaters write them between <quote></quote>
tags; each is checked against the passage by string match and shown to the judge marked as
verified or unverified (Khan et al. 2024). A quote must be at least `min_words` words long to be
verified: a two-word match such as "capital of" occurs in almost any passage and proves nothing.
In the closed-book setting nobody reads the passage, so quotes are shown as written, unchecked."""

from __future__ import annotations

import re

QUOTE_RE = re.compile(r"<quote>(.*?)(?:</quote>|$)", re.S)
MIN_QUOTE_WORDS = 5


def normalize_quote_text(text: str) -> str:
    """Lower case, whitespace runs collapsed to one space, stripped."""
    return " ".join(str(text).lower().split())


def verify_quote(quote: str, passage: str, min_words: int = MIN_QUOTE_WORDS) -> bool:
    """True when the quote has at least `min_words` words and occurs in the passage verbatim, up to
    whitespace and case; a quote with one changed word, a short one, or an empty one is unverified."""
    q = normalize_quote_text(quote)
    return len(q.split()) >= min_words and q in normalize_quote_text(passage)


def mark_quotes(text: str, passage: str | None, min_words: int = MIN_QUOTE_WORDS) -> tuple[str, list[dict]]:
    """The argument as the judge sees it: every <quote>x</quote> (or an unclosed one, cut by the
    token bound) becomes `"x" (verified quote)` or `"x" (unverified quote)`; with no passage
    (closed-book) just `"x"`, and its "verified" is None. Returns (text, quotes)."""
    quotes = []

    def replace(match):
        quote = match.group(1).strip()
        if passage is None:
            quotes.append({"quote": quote, "verified": None})
            return f"\"{quote}\""
        ok = verify_quote(quote, passage, min_words)
        quotes.append({"quote": quote, "verified": ok})
        return f"\"{quote}\" ({'verified' if ok else 'unverified'} quote)"

    return QUOTE_RE.sub(replace, text), quotes
