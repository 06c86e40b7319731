"""Errors shared by every layer, in a module that imports nothing heavy (the DAG files import it at parse time)."""


class InputError(Exception):
    """The input cannot be read at all. The message says what and where, in one line.

    ``ja``: the same message in Japanese, for a person working on a Japanese feed (a municipal officer reading the CLI's
    error or a failure notification); shown before the English one when the feed is Japanese (noriba.notify.japanese).
    """

    def __init__(self, message: str, *, ja: str | None = None):
        super().__init__(message)
        self.ja = ja
