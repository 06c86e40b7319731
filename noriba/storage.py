"""Moved to :mod:`warehouse.storage` (layers point down: noriba → warehouse → transforms); this name stays for old imports.

``noriba.storage`` *is* ``warehouse.storage`` (the same module object), so attributes set on either are seen by both.
"""

import sys

from warehouse import storage as _module

sys.modules[__name__] = _module
