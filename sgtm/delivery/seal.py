"""Keeping configured secrets out of the outbox and the dead letters.

A tag's request may carry a secret from its settings (an access token in the query string, an
API key header). Before a request is stored, every value that came from a secret-looking
environment variable is replaced by `{{secret.NAME}}` (`{{secret.NAME|url}}` for its URL-encoded
forms); just before sending, the placeholders get the values back. The store, `sgtm dlq show`
and backups of the data directory therefore never hold a secret in clear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, quote_plus

from sgtm.delivery.base import rewrite
from sgtm.plugin import Outbound

_PLACEHOLDER_RE = re.compile(r"\{\{secret\.([A-Za-z_][A-Za-z0-9_]*)(\|url\+?)?\}\}")
_MIN_LENGTH = 4  # shorter values would match by accident; the redactor makes the same trade


class SecretSeal:
    def __init__(self, secrets: Mapping[str, str]) -> None:
        """`secrets`: value -> environment variable name, as `ContainerSpec.secrets`."""
        forms: dict[str, str] = {}
        self.values: dict[str, str] = {}
        for value, name in secrets.items():
            if len(value) < _MIN_LENGTH:
                continue
            self.values[name] = value
            forms.setdefault(value, f"{{{{secret.{name}}}}}")
            forms.setdefault(quote(value, safe=""), f"{{{{secret.{name}|url}}}}")
            forms.setdefault(quote_plus(value), f"{{{{secret.{name}|url+}}}}")
        self._forms = forms
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._bytes_pattern = (
            re.compile(b"|".join(re.escape(f.encode()) for f in ordered)) if ordered else None
        )

    def __bool__(self) -> bool:
        return self._pattern is not None

    def seal(self, outbound: Outbound) -> Outbound:
        if self._pattern is None or self._bytes_pattern is None:
            return outbound
        pattern, forms = self._pattern, self._forms

        def text(value: str) -> str:
            return pattern.sub(lambda m: forms[m.group(0)], value)

        body = self._bytes_pattern.sub(lambda m: forms[m.group(0).decode()].encode(), outbound.body)
        return rewrite(outbound, text, body)

    def unseal(self, outbound: Outbound) -> Outbound:
        if not self.values:
            return outbound

        def real(match: re.Match[str]) -> str:
            value = self.values.get(match.group(1))
            if value is None:
                return match.group(0)
            form = match.group(2)
            if form == "|url":
                return quote(value, safe="")
            if form == "|url+":
                return quote_plus(value)
            return value

        def text(value: str) -> str:
            return _PLACEHOLDER_RE.sub(real, value) if "{{secret." in value else value

        body = outbound.body
        if b"{{secret." in body:
            body = text(body.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
        return rewrite(outbound, text, body)
