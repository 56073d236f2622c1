"""Reliability runs: the fault suite (``python -m tests.reliability.faults``) and its tests.

Run as a module, neither pytest's path (the shared layer) nor ``tests/conftest.py``'s Powertools
settings apply; they are set here, before anything imports the layer (its metrics read their
namespace once, on import). Under pytest these are already in place.
"""

import os
import sys
from pathlib import Path

_LAYER = str(Path(__file__).resolve().parents[2] / "layers" / "common")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "AamDcsReliability")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "aam-dcs-reliability")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
