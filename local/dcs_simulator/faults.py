"""Fault injection: latency, 5xx, hangs, connection resets, malformed JSON, down, global rate limit (429).

The decisions come from one seeded RNG, re-seeded each time the fault config is replaced, so a test that
sends its calls one after another sees the same faults on every run.
"""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass
from typing import Any

from .protocol import EVENT_PATH, ID_PATH

FAULT_PATHS = (EVENT_PATH, ID_PATH)
LATENCY_KINDS = ("fixed", "uniform", "normal")


class FaultConfigError(ValueError):
    """A fault setting that cannot be used."""


@dataclass(frozen=True)
class FaultConfig:
    seed: int = 0
    paths: tuple[str, ...] = FAULT_PATHS
    latency_kind: str = "fixed"
    latency_ms: float = 0.0
    latency_min_ms: float = 0.0
    latency_max_ms: float = 0.0
    latency_mean_ms: float = 0.0
    latency_stddev_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    hang_rate: float = 0.0
    hang_seconds: float = 30.0
    reset_rate: float = 0.0
    malformed_rate: float = 0.0
    down: bool = False
    rate_limit_per_second: float = 0.0
    retry_after_seconds: int = 1

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FaultConfig:
        """Parse the ``[faults]`` table (or the admin JSON). ``{}`` means no faults.

        ``latency`` is a table ``{kind = "fixed", ms = 50}``, ``{kind = "uniform", min_ms = 10, max_ms = 80}``
        or ``{kind = "normal", mean_ms = 40, stddev_ms = 15}``; ``latency_ms = 50`` is short for fixed.
        """
        data = dict(data or {})
        allowed = {
            "seed",
            "paths",
            "latency",
            "latency_ms",
            "error_rate",
            "error_status",
            "hang_rate",
            "hang_seconds",
            "reset_rate",
            "malformed_rate",
            "down",
            "rate_limit_per_second",
            "retry_after_seconds",
        }
        unknown = set(data) - allowed
        if unknown:
            raise FaultConfigError(f"unknown fault setting(s): {sorted(unknown)}")
        kw: dict[str, Any] = {}
        if "seed" in data:
            kw["seed"] = _number(data, "seed", int)
        if "paths" in data:
            paths = data["paths"]
            if isinstance(paths, str):
                paths = [paths]
            if not isinstance(paths, list | tuple) or not set(paths) <= set(FAULT_PATHS):
                raise FaultConfigError(f"paths must be a list drawn from {list(FAULT_PATHS)}, got {paths!r}")
            kw["paths"] = tuple(paths)
        kw.update(_latency(data))
        for key in ("error_rate", "hang_rate", "reset_rate", "malformed_rate"):
            if key in data:
                rate = _number(data, key, float)
                if not 0.0 <= rate <= 1.0:
                    raise FaultConfigError(f"{key} must be between 0 and 1, got {rate}")
                kw[key] = rate
        if "error_status" in data:
            status = _number(data, "error_status", int)
            if not 500 <= status <= 599:
                raise FaultConfigError(f"error_status must be a 5xx status, got {status}")
            kw["error_status"] = status
        for key, kind in (("hang_seconds", float), ("rate_limit_per_second", float), ("retry_after_seconds", int)):
            if key in data:
                value = _number(data, key, kind)
                if value < 0:
                    raise FaultConfigError(f"{key} must not be negative, got {value}")
                kw[key] = value
        if "down" in data:
            if not isinstance(data["down"], bool):
                raise FaultConfigError(f"down must be true or false, got {data['down']!r}")
            kw["down"] = data["down"]
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        latency: dict[str, Any] = {"kind": self.latency_kind}
        if self.latency_kind == "fixed":
            latency["ms"] = self.latency_ms
        elif self.latency_kind == "uniform":
            latency.update(min_ms=self.latency_min_ms, max_ms=self.latency_max_ms)
        else:
            latency.update(mean_ms=self.latency_mean_ms, stddev_ms=self.latency_stddev_ms)
        return {
            "seed": self.seed,
            "paths": list(self.paths),
            "latency": latency,
            "error_rate": self.error_rate,
            "error_status": self.error_status,
            "hang_rate": self.hang_rate,
            "hang_seconds": self.hang_seconds,
            "reset_rate": self.reset_rate,
            "malformed_rate": self.malformed_rate,
            "down": self.down,
            "rate_limit_per_second": self.rate_limit_per_second,
            "retry_after_seconds": self.retry_after_seconds,
        }


def _number(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultConfigError(f"{key} must be a number, got {value!r}")
    return kind(value)


def _latency(data: dict[str, Any]) -> dict[str, Any]:
    if "latency_ms" in data:
        if "latency" in data:
            raise FaultConfigError("give either latency or latency_ms, not both")
        return {"latency_kind": "fixed", "latency_ms": _non_negative(data, "latency_ms")}
    if "latency" not in data:
        return {}
    spec = data["latency"]
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return {"latency_kind": "fixed", "latency_ms": _non_negative({"latency": spec}, "latency")}
    if not isinstance(spec, dict):
        raise FaultConfigError(f"latency must be a table, got {spec!r}")
    kind = spec.get("kind", "fixed")
    fields = {"fixed": {"ms"}, "uniform": {"min_ms", "max_ms"}, "normal": {"mean_ms", "stddev_ms"}}
    if kind not in fields:
        raise FaultConfigError(f"latency kind must be one of {list(LATENCY_KINDS)}, got {kind!r}")
    unknown = set(spec) - fields[kind] - {"kind"}
    if unknown:
        raise FaultConfigError(f"latency kind {kind!r} takes {sorted(fields[kind])}, not {sorted(unknown)}")
    out: dict[str, Any] = {"latency_kind": kind}
    for name in fields[kind]:
        out[f"latency_{name}"] = _non_negative(spec, name) if name in spec else 0.0
    if kind == "uniform" and out["latency_min_ms"] > out["latency_max_ms"]:
        raise FaultConfigError("latency min_ms must not exceed max_ms")
    return out


def _non_negative(data: dict[str, Any], key: str) -> float:
    value = float(_number(data, key, float))
    if value < 0:
        raise FaultConfigError(f"{key} must not be negative, got {value}")
    return value


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one request. ``kind`` is None (answer normally) or the fault's name."""

    kind: str | None = None
    latency_seconds: float = 0.0
    status: int = 200
    hang_seconds: float = 0.0
    retry_after: int = 0


class FaultInjector:
    """Not thread-safe on its own: the engine calls it under its lock."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self._window: collections.deque[float] = collections.deque()

    def decide(self, path: str, now: float) -> FaultDecision:
        cfg = self.config
        if path not in cfg.paths:
            return FaultDecision()
        if cfg.down:
            return FaultDecision(kind="down", status=503)
        if cfg.rate_limit_per_second > 0:
            while self._window and self._window[0] <= now - 1.0:
                self._window.popleft()
            if len(self._window) >= cfg.rate_limit_per_second:
                return FaultDecision(kind="rate_limited", status=429, retry_after=max(cfg.retry_after_seconds, 1))
            self._window.append(now)
        latency = self._latency()
        for kind, rate in (
            ("hang", cfg.hang_rate),
            ("reset", cfg.reset_rate),
            ("error", cfg.error_rate),
            ("malformed", cfg.malformed_rate),
        ):
            if rate > 0 and self.rng.random() < rate:
                return FaultDecision(
                    kind=kind,
                    latency_seconds=latency,
                    status=cfg.error_status if kind == "error" else 200,
                    hang_seconds=cfg.hang_seconds if kind == "hang" else 0.0,
                )
        return FaultDecision(kind="latency" if latency > 0 else None, latency_seconds=latency)

    def _latency(self) -> float:
        cfg = self.config
        if cfg.latency_kind == "fixed":
            ms = cfg.latency_ms
        elif cfg.latency_kind == "uniform":
            if cfg.latency_max_ms <= 0:
                return 0.0
            ms = self.rng.uniform(cfg.latency_min_ms, cfg.latency_max_ms)
        else:
            if cfg.latency_mean_ms <= 0 and cfg.latency_stddev_ms <= 0:
                return 0.0
            ms = max(0.0, self.rng.gauss(cfg.latency_mean_ms, cfg.latency_stddev_ms))
        return ms / 1000.0
