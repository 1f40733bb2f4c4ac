"""The plugin kit: helpers that plugins share, public and documented (docs/plugins.md, "The kit").

- `sgtm.kit.cookies`: first-party cookies a client sets (domain from the Public Suffix List,
  consent check, RFC 6265 value check, cookie settings block).
- `sgtm.kit.hashing`: SHA-256 of personal data, "already hashed" detection, E.164 phones.
- `sgtm.kit.http`: settings URLs checked at load, vendor answers that may not be JSON, the one
  request a batching tag sends for several outbounds.
- `sgtm.kit.inbound`: requests servers send: bounded JSON bodies, raw-body HMACs compared in
  constant time, senders' rates.
- `sgtm.kit.mapping`: field maps from event data (`{vendor_field: "dotted.key"}`) and value
  coercion (numbers from strings, scalars as text, presence).

A vendor's own rules never live here; they stay in that vendor's plugin.
"""
