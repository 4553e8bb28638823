"""``patwarden serve``: the unattended service over the same engine and journal as ``rotate``.

One module per responsibility: :mod:`~patwarden.service.scheduler` (the loop, backoff, signals),
:mod:`~patwarden.service.checks` (one check pass: desired state, rotation batches),
:mod:`~patwarden.service.leadership` (one instance per state), :mod:`~patwarden.service.snapshot`
(what the service knows, for every endpoint), :mod:`~patwarden.service.readiness`,
:mod:`~patwarden.service.metrics` (Prometheus), :mod:`~patwarden.service.http` (the endpoints),
:mod:`~patwarden.service.status_page` (``/``), :mod:`~patwarden.service.alerts` (conditions and
their de-duplication), :mod:`~patwarden.service.channels` (webhook, Teams, Slack, email) and
:mod:`~patwarden.service.logs` (human or JSON lines). The layer above is the CLI
(``patwarden serve``, ``patwarden notify test``); nothing below imports this package.
"""
