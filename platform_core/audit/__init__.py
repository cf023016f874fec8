"""The audit trail: who read, wrote, or was allowed or refused what, kept where the data lives.

``record`` says what one record holds and how records chain; ``trail`` writes them (the
``AuditTrail`` resource); ``verify`` proves a trail intact against its anchors; ``export``
writes it out as JSON lines, CSV or Parquet; ``commands`` is ``dataops audit``.
"""
