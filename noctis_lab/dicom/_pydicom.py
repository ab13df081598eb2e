"""pydicom, imported without its example-data download stack.

pydicom imports ``requests`` and ``tqdm`` (in ``pydicom.data.download``) only to fetch
its own example files from the network, which Noctis Lab never asks it to do (it works
offline). Those two imports are about a third of the time it takes to import pydicom,
paid by every fresh ``noctis-lab hu analyze``. While pydicom is first imported they
are held back — only when nobody imported them before, and only for that import:
afterwards ``import requests`` and ``import tqdm`` work as usual.
"""

from __future__ import annotations

import sys
from types import ModuleType

__all__ = ["pydicom"]

#: Optional imports of pydicom's download helper (it checks them with try/except).
_HELD_BACK = ("requests", "tqdm")


def _import_pydicom() -> ModuleType:
    if "pydicom" in sys.modules:
        return sys.modules["pydicom"]
    held = [name for name in _HELD_BACK if name not in sys.modules]
    for name in held:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        import pydicom
    finally:
        for name in held:
            if sys.modules.get(name, ModuleType(name)) is None:
                del sys.modules[name]
    return pydicom


pydicom = _import_pydicom()
