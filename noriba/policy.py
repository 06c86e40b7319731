"""Moved to :mod:`warehouse.policy` (layers point down: noriba → warehouse → transforms); this name stays for old imports.

``noriba.policy`` *is* ``warehouse.policy`` (the same module object), so attributes set on either are seen by both.
"""

import sys

from warehouse import policy as _module

sys.modules[__name__] = _module
