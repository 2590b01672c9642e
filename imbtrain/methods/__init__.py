"""Losses, SAM/SAM-A, smoothing, Joint-SSL and the imbalance baselines, one module each.

Importing this package imports every module in it, so each `@register_method` runs: adding a
method is one new module here with a decorated class.
"""

import importlib
import pkgutil

from imbtrain.methods.base import METHODS, Method, build_method, register_method

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["METHODS", "Method", "build_method", "register_method"]
