"""An offline stand-in for Adobe Audience Manager's DCS and the Experience Cloud ID service.

Used by the local stack and by every integration test::

    from local.dcs_simulator import DcsSimulator, SimulatorConfig

    with DcsSimulator(config=SimulatorConfig.load(), port=0) as sim:
        ...  # point AAM_DCS_ENDPOINT at sim.url

See README.md beside this file and the comments in rules.toml.
"""

from .config import DEFAULT_CONFIG_PATH, ConfigError, SimulatorConfig
from .faults import FaultConfigError
from .protocol import REGION_HOSTS
from .rules import RuleError
from .server import DcsSimulator

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "REGION_HOSTS",
    "ConfigError",
    "DcsSimulator",
    "FaultConfigError",
    "RuleError",
    "SimulatorConfig",
]
