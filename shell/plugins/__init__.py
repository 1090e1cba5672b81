"""Strategy-adapter plugins: entry points discovered as data, then the one selected adapter class loaded.

Below the Lightning callbacks (it never imports them); the adapter base class is passed in by the caller.
"""

from ._discovery import discover_adapters, scan_entry_points, select_adapter, sibling_problem
from ._loading import adapter_params, instantiate_adapter, load_adapter_class
from ._report import AdapterError, AdapterWarning, render, warn

__all__ = [
    "AdapterError",
    "AdapterWarning",
    "adapter_params",
    "discover_adapters",
    "instantiate_adapter",
    "load_adapter_class",
    "render",
    "scan_entry_points",
    "select_adapter",
    "sibling_problem",
    "warn",
]
