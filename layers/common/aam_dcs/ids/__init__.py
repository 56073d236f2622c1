"""Identity: AMCV and other first-party cookie parsing, ID validation and the resolution order.

Modules, lowest layer first:

- ``validation``: the rules for user IDs, regions, blobs and declared (customer) IDs;
- ``amcv``: the AMCV cookie value, read exactly as Adobe's libraries read it;
- ``cookies``: a tolerant ``Cookie`` header splitter and the other carriers (``s_ecid``,
  ``aam_uuid``/``aam_did``, ``kndctr_<org>_identity``, ``adobe_mc``);
- ``models``: the public contract (identity input, ``resolve_ids`` result) and ``parse_identity``;
- ``sources``: the pure resolution order (no I/O) and ``needs_id_service``.

Parsers of untrusted carriers never raise: a bad value is dropped. Explicit caller input that
breaks a rule is refused with ``InvalidRequest`` naming the field and the rule.
"""
