"""How compiled code is compiled: two decorators, one rule.

* :data:`kernel`: cached Numba compilation *without* the runtime's reference counting. Our
  hot paths pass structures of many arrays (a book set, the account table, the ledger) from
  function to function; with reference counting every call pays an increment and a
  decrement per array (measured: about 0.5 µs per call with a book set). A ``kernel``
  never allocates or returns an array: scratch space comes in as an argument.
* :data:`kernel_alloc`: cached Numba compilation with the runtime, for the few functions
  that allocate (setup, sorting into fresh arrays) and are not on a per-order path.

Numba's ``_nrt=False`` flag is what removes the counting; its effect is checked by a test
(tests/test_compiled.py) so that a Numba release that changes it is noticed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numba import njit

kernel: Callable[[Any], Any] = njit(cache=True, _nrt=False)  # type: ignore[call-overload]
"""Decorator for compiled functions that never allocate (see the module docstring)."""

kernel_inline: Callable[[Any], Any] = njit(cache=True, _nrt=False, inline="always")  # type: ignore[call-overload]
"""As :data:`kernel`, inlined into its callers (tiny helpers on the hottest paths)."""

kernel_alloc: Callable[[Any], Any] = njit(cache=True)
"""Decorator for compiled functions that allocate arrays (not on per-order paths)."""
