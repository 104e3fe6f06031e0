"""Periodic fixity audits: the ledger of outcomes, the runner (tiers, budget, Dask), reports.

- :mod:`preserve.audit.ledger`: the SQLite ledger (bags, audits, findings, replicas, repairs).
- :mod:`preserve.audit.runner`: discovering bags, choosing tiers, auditing within a budget.
- :mod:`preserve.audit.report`: what the ledger says (never audited, overdue, open failures).
- :mod:`preserve.audit.html`: the self-contained HTML report.
- :mod:`preserve.audit.notify`: the webhook posted when an audit finds problems.
- :mod:`preserve.audit.distributed`: the same audit on a Dask distributed cluster.
- :mod:`preserve.audit.events`: a bag's whole history as one PREMIS 3 document.
"""
