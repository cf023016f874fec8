"""The deployment model: target x environment, layered settings, strict validation, provenance.

The bottom of the house: it imports nothing of the project, and it is the one place that reads
the process environment (``config.environment``).
"""

from config.deployment import (
    DEFAULT_CONFIG_DIR,
    ENVIRONMENTS,
    TARGETS,
    Deployment,
    Provenance,
    Section,
    load_deployment,
)
from config.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_DIR",
    "ENVIRONMENTS",
    "TARGETS",
    "ConfigError",
    "Deployment",
    "Provenance",
    "Section",
    "load_deployment",
]
