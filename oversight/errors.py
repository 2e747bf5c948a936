"""Errors that mean "the user asked for something that cannot work": printed as one line."""


class ConfigError(Exception):
    """Bad input from the user: an unknown choice, a missing path, an unreachable database."""
