"""Where the platform keeps things inside a target's storage root, besides data products.

``<environment>/<team>/...`` holds products (``io_manager``); these reserved folders, named so
that no team can be called the same, hold the landing zones and the quarantine records.
"""

LANDING_ROOT = "landing"
QUARANTINE_ROOT = "quarantine"
RESERVED = (LANDING_ROOT, QUARANTINE_ROOT)
