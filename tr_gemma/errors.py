"""Exceptions with messages written for the person who has to fix the input."""


class PipelineInputError(ValueError):
    """Bad user input: a file, a row or a setting. The message names what is at fault."""


class DataFileError(PipelineInputError):
    """A local data file is malformed (missing column, bad type, bad UTF-8, truncated JSON)."""

    def __init__(self, path, problem: str, row: int | None = None, column: str | None = None):
        where = f"{path}"
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.row = row
        self.column = column


class SourceUnavailableError(RuntimeError):
    """A remote source (the Hugging Face Hub) cannot be used right now or with these credentials.

    ``retryable`` tells Dagster whether another attempt can help (a network blip can; a gated
    repository or a wrong id cannot).
    """

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


class DiskFullError(OSError):
    """The disk filled up (ENOSPC) while writing a result; the message names what and how much is free.

    Subclasses OSError with errno ENOSPC, so code that handles OSError still sees one.
    """
