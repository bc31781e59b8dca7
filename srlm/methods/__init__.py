"""Methods: each one readable top to bottom in its own module.

A method is a :class:`srlm.methods.base.Method` subclass decorated with
``@register_method("name", schema=NameConfig)`` in a module of this package, plus
``conf/method/<name>.yaml``. Every module here is imported on the first lookup, so nothing else
lists the methods (see docs/extending.md).
"""

from __future__ import annotations

from srlm.methods.base import Method, get_method, method_names, register_method

__all__ = ["Method", "get_method", "method_names", "register_method"]
