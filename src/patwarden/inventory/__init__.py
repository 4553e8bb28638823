"""Org-wide PAT inventory and governance (``patwarden inventory``).

- :mod:`~patwarden.inventory.model` — owners, PATs, findings, severities (frozen values);
- :mod:`~patwarden.inventory.findings` — the pure rules (inject "now");
- :mod:`~patwarden.inventory.scanner` — the streaming, concurrent scan over an
  :class:`~patwarden.inventory.scanner.InventorySource`;
- :mod:`~patwarden.inventory.summary` — constant-memory totals and the weekly expiry histogram;
- :mod:`~patwarden.inventory.export` / :mod:`~patwarden.inventory.html` — JSON, CSV and HTML output;
- :mod:`~patwarden.inventory.revoke` — bulk revocation through Token Admin.

See ``docs/inventory.md``.
"""
