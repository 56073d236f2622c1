"""The simulator's configuration: one TOML file (``rules.toml`` beside this module is the default)."""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .faults import FaultConfig, FaultConfigError
from .protocol import REGION_HOSTS, is_valid_id
from .rules import RuleError, RuleSet

DEFAULT_CONFIG_PATH = Path(__file__).with_name("rules.toml")

DEFAULT_PARTNERS: dict[str, tuple[str, ...]] = {"acme": ("0123456789ABCDEF01234567@AdobeOrg",)}


class ConfigError(ValueError):
    """The configuration file (or document) cannot be used."""


_SECTIONS: dict[str, set[str]] = {
    "simulator": {
        "gslb_region",
        "id_service_region",
        "sync_delay_seconds",
        "seed",
        "max_logged_calls",
        "set_demdex_cookie",
    },
    "limits": {"max_get_bytes", "max_post_bytes", "max_declared_ids", "max_declared_ids_per_namespace"},
    "denylist": {"threshold_per_minute", "uuids", "mids", "declared_ids"},
    "opt_out": {"uuids", "mids", "declared_ids"},
}
_LISTS = {"partners", "data_sources", "traits", "segments"}
_TABLES = {"destinations", "faults"}


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything the simulator needs; :meth:`load` reads it from TOML, :meth:`replace` derives variants."""

    #: partner alias (``acme`` for ``acme.demdex.net``) -> the org IDs it owns
    partners: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_PARTNERS))
    #: region the partner alias (GSLB) lands in
    gslb_region: int = 9
    #: ``dcs_region`` answered by ``/id`` (the data centre the caller runs in)
    id_service_region: int = 7
    #: seconds before a region sees what another region wrote (0 = at once)
    sync_delay_seconds: float = 0.0
    #: seed for minted IDs, tids and blobs (None = random); faults have their own seed
    seed: int | None = None
    max_logged_calls: int = 20000
    #: answer with ``Set-Cookie: demdex=<uuid>`` like the real DCS (catches clients that keep a cookie jar)
    set_demdex_cookie: bool = True
    max_get_bytes: int = 8192
    max_post_bytes: int = 32768
    max_declared_ids: int = 10
    max_declared_ids_per_namespace: int = 3
    #: calls per ID per minute beyond which the ID is denylisted for good (0 = never)
    denylist_threshold_per_minute: int = 600
    denylisted_uuids: tuple[str, ...] = ()
    denylisted_mids: tuple[str, ...] = ()
    denylisted_declared_ids: tuple[dict[str, Any], ...] = ()
    opt_out_uuids: tuple[str, ...] = ()
    opt_out_mids: tuple[str, ...] = ()
    opt_out_declared_ids: tuple[dict[str, Any], ...] = ()
    #: ``{"id": 123, "integration_code": "crm", "name": "CRM"}``: integration codes name data sources
    data_sources: tuple[dict[str, Any], ...] = ()
    #: ``{"traits": [...], "segments": [...], "destinations": {"cookie": [...], "url": [...]}}``
    rules: dict[str, Any] = field(default_factory=dict)
    #: the ``[faults]`` table (see :class:`FaultConfig`)
    faults: dict[str, Any] = field(default_factory=dict)
    #: where the config came from (for the health endpoint)
    source: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    # --- loading ---------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path | None = None) -> SimulatorConfig:
        """Read a TOML file; None reads the bundled ``rules.toml``."""
        file = Path(path) if path is not None else DEFAULT_CONFIG_PATH
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read simulator config {file}: {exc}") from exc
        return cls.from_toml(text, source=str(file))

    @classmethod
    def from_toml(cls, text: str, *, source: str | None = None) -> SimulatorConfig:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"simulator config {source or '<string>'} is not valid TOML: {exc}") from exc
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | None = None) -> SimulatorConfig:
        """Build from the nested TOML shape (the same shape :meth:`to_dict` gives)."""
        unknown = set(data) - set(_SECTIONS) - _LISTS - _TABLES
        if unknown:
            raise ConfigError(f"unknown section(s) in simulator config: {sorted(unknown)}")
        for section, keys in _SECTIONS.items():
            extra = set(data.get(section, {})) - keys
            if extra:
                raise ConfigError(f"unknown key(s) in [{section}]: {sorted(extra)}")
        sim = data.get("simulator", {})
        limits = data.get("limits", {})
        deny = data.get("denylist", {})
        opt = data.get("opt_out", {})
        kw: dict[str, Any] = dict(sim.items())
        kw.update(limits)
        if "threshold_per_minute" in deny:
            kw["denylist_threshold_per_minute"] = deny["threshold_per_minute"]
        for key in ("uuids", "mids", "declared_ids"):
            if key in deny:
                kw[f"denylisted_{key}"] = tuple(deny[key])
            if key in opt:
                kw[f"opt_out_{key}"] = tuple(opt[key])
        if "partners" in data:
            kw["partners"] = _partners(data["partners"])
        if "data_sources" in data:
            kw["data_sources"] = tuple(data["data_sources"])
        kw["rules"] = {k: data[k] for k in ("traits", "segments", "destinations") if k in data}
        kw["faults"] = dict(data.get("faults", {}))
        kw["source"] = source
        try:
            return cls(**kw)
        except TypeError as exc:
            raise ConfigError(str(exc)) from exc

    def to_dict(self) -> dict[str, Any]:
        """The nested TOML shape (JSON-friendly)."""
        return {
            "simulator": {
                "gslb_region": self.gslb_region,
                "id_service_region": self.id_service_region,
                "sync_delay_seconds": self.sync_delay_seconds,
                "seed": self.seed,
                "max_logged_calls": self.max_logged_calls,
                "set_demdex_cookie": self.set_demdex_cookie,
            },
            "partners": [{"alias": a, "org_ids": list(orgs)} for a, orgs in self.partners.items()],
            "data_sources": [dict(d) for d in self.data_sources],
            "limits": {
                "max_get_bytes": self.max_get_bytes,
                "max_post_bytes": self.max_post_bytes,
                "max_declared_ids": self.max_declared_ids,
                "max_declared_ids_per_namespace": self.max_declared_ids_per_namespace,
            },
            "denylist": {
                "threshold_per_minute": self.denylist_threshold_per_minute,
                "uuids": list(self.denylisted_uuids),
                "mids": list(self.denylisted_mids),
                "declared_ids": [dict(d) for d in self.denylisted_declared_ids],
            },
            "opt_out": {
                "uuids": list(self.opt_out_uuids),
                "mids": list(self.opt_out_mids),
                "declared_ids": [dict(d) for d in self.opt_out_declared_ids],
            },
            **copy.deepcopy(self.rules_or_empty()),
            "faults": copy.deepcopy(self.faults),
        }

    def replace(self, **changes: Any) -> SimulatorConfig:
        """A copy with some fields changed, e.g. ``cfg.replace(sync_delay_seconds=0.5)``."""
        return dataclasses.replace(self, **changes)

    # --- derived ---------------------------------------------------------------------------------------

    def rules_or_empty(self) -> dict[str, Any]:
        return {
            "traits": list(self.rules.get("traits", [])),
            "segments": list(self.rules.get("segments", [])),
            "destinations": dict(self.rules.get("destinations", {})),
        }

    def rule_set(self) -> RuleSet:
        return RuleSet.from_dict(self.rules)

    def fault_config(self) -> FaultConfig:
        return FaultConfig.from_dict(self.faults)

    def ic_to_dpid(self) -> dict[str, str]:
        """Integration code -> data source id, for the data sources that have one."""
        return {str(d["integration_code"]): str(d["id"]) for d in self.data_sources if d.get("integration_code")}

    def org_ids(self) -> set[str]:
        return {org for orgs in self.partners.values() for org in orgs}

    def partner_for_org(self, org_id: str) -> str | None:
        for alias, orgs in self.partners.items():
            if org_id in orgs:
                return alias
        return None

    # --- validation ------------------------------------------------------------------------------------

    def validate(self) -> None:
        for name in ("gslb_region", "id_service_region"):
            region = getattr(self, name)
            if region not in REGION_HOSTS:
                raise ConfigError(f"{name} must be one of the DCS regions {sorted(REGION_HOSTS)}, got {region!r}")
        if not self.partners:
            raise ConfigError("at least one partner is needed")
        for alias in self.partners:
            if not alias or not alias.replace("-", "").isalnum() or alias != alias.lower():
                raise ConfigError(f"partner alias must be a lower-case DNS label, got {alias!r}")
        positive = ("max_get_bytes", "max_post_bytes", "max_declared_ids", "max_declared_ids_per_namespace")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.sync_delay_seconds < 0 or self.denylist_threshold_per_minute < 0 or self.max_logged_calls < 0:
            raise ConfigError("sync_delay_seconds, threshold_per_minute and max_logged_calls must not be negative")
        for name in ("opt_out_uuids", "opt_out_mids", "denylisted_uuids", "denylisted_mids"):
            bad = [v for v in getattr(self, name) if not is_valid_id(v)]
            if bad:
                raise ConfigError(f"{name}: not 38-digit IDs: {bad}")
        for name in ("opt_out_declared_ids", "denylisted_declared_ids"):
            for entry in getattr(self, name):
                _declared_entry(name, entry)
        for source in self.data_sources:
            if not isinstance(source, dict) or "id" not in source or set(source) - {"id", "integration_code", "name"}:
                raise ConfigError(f"data_sources entries take id, integration_code, name; got {source!r}")
        try:
            RuleSet.from_dict(self.rules)
            FaultConfig.from_dict(self.faults)
        except (RuleError, FaultConfigError) as exc:
            raise ConfigError(str(exc)) from exc


def _partners(raw: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, list):
        raise ConfigError("[[partners]] must be a list of tables with alias and org_ids")
    out: dict[str, tuple[str, ...]] = {}
    for entry in raw:
        if not isinstance(entry, dict) or set(entry) - {"alias", "org_ids"} or "alias" not in entry:
            raise ConfigError(f"[[partners]] entries take alias and org_ids, got {entry!r}")
        out[str(entry["alias"])] = tuple(str(o) for o in entry.get("org_ids", []))
    return out


def _declared_entry(name: str, entry: Any) -> None:
    if not isinstance(entry, dict) or "id" not in entry:
        raise ConfigError(f"{name}: entries are {{data_source_id = N, id = ...}} or {{integration_code, id}}")
    keys = set(entry) - {"id"}
    if keys not in ({"data_source_id"}, {"integration_code"}):
        raise ConfigError(f"{name}: give exactly one of data_source_id or integration_code in {entry!r}")
