""" "Did you mean ...?" for names a config file got wrong (keys, types, triggers, variables, tags).

difflib compares the word with each known name, so the cost is linear in the number of names and
bounded by their length: words and names longer than MAX_CHARS are not compared, and at most
MAX_NAMES names are.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

MAX_CHARS = 64
MAX_NAMES = 2000


def closest(word: str, names: Iterable[str]) -> str | None:
    """The known name `word` most likely misspells, or None."""
    if not word or len(word) > MAX_CHARS:
        return None
    candidates: list[str] = []
    for name in names:
        if len(candidates) >= MAX_NAMES:
            break
        if isinstance(name, str) and 0 < len(name) <= MAX_CHARS and name != word:
            candidates.append(name)
    lowered = {c.lower(): c for c in candidates}
    if word.lower() in lowered:  # a difference of case only
        return lowered[word.lower()]
    found = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return found[0] if found else None


def hint(word: str, names: Iterable[str]) -> str:
    """' (did you mean 'x'?)' to append to a message, or ''."""
    found = closest(word, names)
    return f" (did you mean '{found}'?)" if found else ""
