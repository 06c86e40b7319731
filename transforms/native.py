"""The optional C extension (native/noriba_wire): its hot paths run when it is installed, the pure Python ones otherwise."""

from __future__ import annotations

import os


def load_native(pure_env: str):
    """Return the noriba_wire module, or None when it is not importable or the environment variable ``pure_env`` is "1"
    (the pure Python path, forced)."""
    if os.environ.get(pure_env) == "1":
        return None
    try:
        import noriba_wire
    except ImportError:
        return None
    return noriba_wire
