"""The one error a wrong setting raises."""


class ConfigError(ValueError):
    """A deployment setting is missing or wrong. The message names the setting and the fix."""
