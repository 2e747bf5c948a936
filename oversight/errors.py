"""Errors that mean "the user asked for something that cannot work": printed as one line."""


class ConfigError(ValueError):
    """Bad input from the user: a value out of range, an unknown choice, a missing path, an
    unreachable database. A ValueError, as a bad argument to a constructor is."""
