"""Keeping configured secrets out of the outbox and the dead letters.

A tag's request may carry a secret from its settings (an access token in the query string, an
API key header). Before a request is stored, every occurrence of a configured secret (its plain,
percent-encoded and form-encoded forms) is replaced by a placeholder bound to the job's nonce
(`sgtm.placeholders`); just before sending, those placeholders get the values back. The store,
`sgtm dlq show` and backups of the data directory therefore never hold a secret in clear, and
placeholder text a hit smuggled into a request is never filled: it lacks the nonce.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from urllib.parse import quote, quote_plus

from sgtm import placeholders
from sgtm.delivery.base import rewrite
from sgtm.plugin import Outbound
from sgtm.redact import alternation


class SecretSeal:
    def __init__(self, secrets: Mapping[str, str]) -> None:
        """`secrets`: value -> name, as `ContainerSpec.secrets`."""
        # Every form a secret may take in a request, mapped to (name, placeholder form).
        forms: dict[str, tuple[str, str]] = {}
        self.values: dict[str, str] = {}
        for value, name in secrets.items():
            if not value:
                continue
            self.values[name] = value
            forms.setdefault(value, (name, ""))
            forms.setdefault(quote(value, safe=""), (name, "|url"))
            forms.setdefault(quote_plus(value), (name, "|url+"))
        self._forms = forms
        pattern = alternation(forms)  # the longest form wins at one position
        self._pattern = re.compile(pattern) if forms else None
        self._bytes_pattern = re.compile(pattern.encode()) if forms else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def seal(self, outbound: Outbound, nonce: str | Callable[[], str]) -> tuple[Outbound, str]:
        """The request with secrets replaced by placeholders bound to `nonce` (a nonce, or what
        draws one: called only when a secret is found, so a request without one costs no draw),
        and that nonce; "" when no secret was found (the request needs no nonce kept)."""
        if self._pattern is None or self._bytes_pattern is None:
            return outbound, ""
        pattern, forms = self._pattern, self._forms
        bound = ""

        def placeholder(form: str) -> str:
            nonlocal bound
            if not bound:
                bound = nonce if isinstance(nonce, str) else nonce()
            name, kind = forms[form]
            return placeholders.secret(bound, name, kind)

        def text(value: str) -> str:
            return pattern.sub(lambda m: placeholder(m.group(0)), value)

        body = self._bytes_pattern.sub(
            lambda m: placeholder(m.group(0).decode()).encode(), outbound.body
        )
        sealed = rewrite(outbound, text, body)
        return (sealed, bound) if bound else (outbound, "")

    def unseal(self, outbound: Outbound, nonces: Collection[str]) -> Outbound:
        """The request with the placeholders of `nonces` (its jobs') replaced by the secrets."""
        if not self.values or not nonces:
            return outbound

        def real(kind: str, name: str | None, form: str) -> str | None:
            value = self.values.get(name or "") if kind == "secret" else None
            if value is None:
                return None
            if form == "|url":
                return quote(value, safe="")
            if form == "|url+":
                return quote_plus(value)
            return value

        body = placeholders.fill_bytes(outbound.body, nonces, real)
        return rewrite(outbound, lambda value: placeholders.fill(value, nonces, real), body)
