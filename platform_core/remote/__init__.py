"""Driving a running deployment through its webserver's GraphQL API, as a scheduler does.

``dataops trigger``, ``dataops status`` and ``dataops logs`` (``commands.py``) speak to the
webserver through ``DeploymentClient`` (``client.py``) and answer with the exit codes of
``exit_codes.py``, which a scheduler (Control-M, Autosys, cron, a CI job) acts on.
"""
