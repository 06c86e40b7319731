"""Moved to :mod:`warehouse.workspace` (layers point down: noriba → warehouse → transforms); this name stays for old imports.

``noriba.workspace`` *is* ``warehouse.workspace`` (the same module object), so attributes set on either are seen by both.
"""

import sys

from warehouse import workspace as _module

sys.modules[__name__] = _module
