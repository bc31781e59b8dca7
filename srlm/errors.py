"""Errors that are the user's to fix: printed as one clear message, without a traceback."""


class SrlmError(Exception):
    """Base class: the message says what is wrong and what to do."""


class ConfigError(SrlmError):
    """A config value, type or combination that cannot work."""


class SetupError(SrlmError):
    """Something the run needs (model, data file, package) is missing."""


class RunDirError(SrlmError):
    """A run directory that cannot be used as it is: another experiment's, unreadable or
    unwritable; the message names the file and what to do."""


class Problems(ConfigError):
    """Every problem a check found, reported together: one ``srlm: error:`` line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def problems_of(error: SrlmError) -> list[str]:
    """The problems an SrlmError reports: a Problems' list, or its one message."""
    return list(getattr(error, "problems", [str(error)]))


def error_lines(error: SrlmError) -> list[str]:
    """What the command line prints for an SrlmError: one line per problem."""
    return [f"srlm: error: {p}" for p in problems_of(error)]
