"""Errors shared by every layer, in a module that imports nothing heavy (the DAG files import it at parse time)."""


class InputError(Exception):
    """The input cannot be read at all. The message says what and where, in one line."""
