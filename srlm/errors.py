"""Errors that are the user's to fix: printed as one clear message, without a traceback."""


class SrlmError(Exception):
    """Base class: the message says what is wrong and what to do."""


class ConfigError(SrlmError):
    """A config value, type or combination that cannot work."""


class SetupError(SrlmError):
    """Something the run needs (model, data file, package) is missing."""


class RunDirError(SrlmError):
    """The run directory belongs to a different experiment."""
