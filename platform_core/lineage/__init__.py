"""OpenLineage out of every run, rebuilt from the Dagster event log (see ``emit`` and ``sensor``).

Nothing here is imported by asset code; the OpenLineage client is imported only when events are
built or sent, so loading a code location stays fast.
"""
