"""Newtail / VTEX Ads normalization of personal data for the conversion `*_hashed` fields
(old_doc/reference_segmentacao-por-pii.md). Each function returns None for a value that cannot be
one of its kind.

- `newtail_text` (email, first and last name): the kit's `lower_without_spaces`, lowercase, then
  remove every whitespace character ("remover todos os ESPAÇOS e converter para MINÚSCULO"):
  `Ana Maria` -> `anamaria`.
- phones: `sgtm.kit.hashing.e164` ("formatá-lo no padrão E.164 e incluir o código de chamada do
  país").
- `newtail_social_id` (CPF / CNPJ): only letters and digits, lowercased; 11 characters (CPF) or
  14 (CNPJ, alphanumeric from July 2026).
"""

from __future__ import annotations

from sgtm.kit.hashing import lower_without_spaces

_SOCIAL_ID_LENGTHS = (11, 14)


newtail_text = lower_without_spaces


def newtail_email(value: object) -> str | None:
    """`newtail_text` of something shaped like an email address (`local@domain.tld`)."""
    text = newtail_text(value)
    if text is None:
        return None
    local, at, domain = text.rpartition("@")
    if not at or not local or "@" in local or "." not in domain:
        return None
    return text


def newtail_social_id(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value).zfill(11)
    if not isinstance(value, str):
        return None
    text = "".join(char for char in value if char.isascii() and char.isalnum()).lower()
    return text if len(text) in _SOCIAL_ID_LENGTHS else None
