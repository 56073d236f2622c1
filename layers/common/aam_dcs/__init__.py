"""Shared package of the AAM DCS server-to-server bundle.

Layout by capability: ``dcs`` (transport), ``ids`` (identity resolution), ``signals``,
``segments``, ``store`` and ``jobs`` (AWS adapters), ``api`` (HTTP mapping).
Nothing heavy is imported here: each function imports only what it uses.
"""

__version__ = "0.1.0"
