"""Keeping secrets out of logs, error messages and `sgtm emulate` output.

Values substituted from environment variables with secret-looking names (`*TOKEN*`, `*SECRET*`,
`*KEY*`, `*PASSWORD*`, ...) are replaced by `${NAME}` wherever text leaves the process, in their
plain and URL-encoded forms.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, quote_plus


class Redactor:
    def __init__(self, secrets: Mapping[str, str]) -> None:
        variants: dict[str, str] = {}
        for value, name in secrets.items():
            for form in (value, quote(value, safe=""), quote_plus(value)):
                variants.setdefault(form, name)
        self._names = variants
        ordered = sorted(variants, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: "${" + self._names[m.group(0)] + "}", text)

    def __bool__(self) -> bool:
        return self._pattern is not None
