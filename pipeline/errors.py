"""The one exception type the project raises for bad input; the CLI prints it as one line."""


class ManyModelsError(Exception):
    """Bad input or an impossible request. The message names the file, row and column when known."""


def located(path: object, message: str, line: int | None = None, column: str | None = None) -> ManyModelsError:
    """Build an error whose message starts with where the problem is: `file, line N, column C: message`."""
    where = str(path)
    if line is not None:
        where += f", line {line}"
    if column is not None:
        where += f", column {column!r}"
    return ManyModelsError(f"{where}: {message}")
