"""The simulator's state and protocol logic, independent of HTTP.

One :class:`Engine` holds everything (profiles per region, ID links, opt-outs, denylists, the call log,
fault injection, in-flight tracking) behind one lock. The HTTP layer calls :meth:`Engine.begin` when a
request arrives, sleeps outside the lock if a fault says so, then :meth:`Engine.process` and
:meth:`Engine.finish`.
"""

from __future__ import annotations

import bisect
import collections
import copy
import json
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .config import SimulatorConfig
from .faults import FaultConfig, FaultDecision, FaultInjector
from .protocol import (
    DCS_PATHS,
    EVENT_PATH,
    FORM_CONTENT_TYPE,
    HOST_REGIONS,
    ID_PATH,
    ID_SERVICE_HOST,
    ID_SYNC_TTL,
    OPTOUT_HOST,
    OPTOUT_TTL,
    PIXEL_GIF,
    REGION_HOSTS,
    DeclaredId,
    all_values,
    blob_for,
    encoding_is_valid,
    error,
    first,
    is_demdex_host,
    is_private_key,
    is_valid_id,
    mint_id,
    new_tid,
    normalize_host,
    parse_declared,
    parse_params,
    redact_params,
    redact_raw,
    split_serialized,
    x_error_header,
)
from .rules import RuleSet

#: Query keys that are neither ``d_`` controls nor signals.
NON_SIGNAL_KEYS = frozenset({"dcs_region", "gdpr", "gdpr_consent", "ts", "_ts", "dpid", "dpuuid"})
#: ``h_`` signals the DCS derives from request headers.
HEADER_SIGNALS = (
    ("h_host", "host"),
    ("h_user-agent", "user-agent"),
    ("h_referer", "referer"),
    ("h_referrer", "referer"),
    ("h_accept-language", "accept-language"),
)
LOGGED_HEADERS = ("Host", "X-Forwarded-Host", "User-Agent", "Referer", "Cookie", "Content-Type")
MAX_VIOLATIONS_KEPT = 1000


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


@dataclass
class Request:
    """One HTTP request as the engine sees it. Header names are lower-case."""

    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes = b""
    content_length: int = 0

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def cookie(self, name: str) -> str | None:
        raw = self.header("cookie")
        if not raw:
            return None
        for piece in raw.split(";"):
            key, _, value = piece.strip().partition("=")
            if key == name:
                return value
        return None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    logged: Any = None  # what the call log shows as the response body
    action: str = "send"  # "send", "reset" (close with RST) or "hang" (withhold the answer, then close)
    hang_seconds: float = 0.0

    @classmethod
    def json(cls, status: int, data: Any, headers: list[tuple[str, str]] | None = None) -> Response:
        return cls(status, _json_bytes(data), "application/json", list(headers or []), logged=data)


@dataclass
class Plan:
    """What :meth:`Engine.begin` decided for one request."""

    seq: int
    entry: dict[str, Any]
    started: float
    target: str | None
    target_kind: str | None
    region: int
    raw: str = ""
    params: list[tuple[str, str]] | None = None
    user_keys: list[str] = field(default_factory=list)
    decision: FaultDecision = field(default_factory=FaultDecision)
    early: Response | None = None
    tracked: bool = False  # entered the in-flight set
    generation: int = 0  # the engine's reset count when the call arrived


@dataclass
class _Ctx:
    """Per-call working state of /event, /id and /demoptout."""

    req: Request
    plan: Plan
    now: float
    tid: str
    wants_json: bool
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def region(self) -> int:
        return self.plan.region

    @property
    def params(self) -> list[tuple[str, str]]:
        return self.plan.params or []


@dataclass
class _Ids:
    uuid: str | None = None
    mid: str | None = None
    declared: list[DeclaredId] = field(default_factory=list)
    notarget: bool = False
    sent_any_valid: bool = False


class _Series:
    """Realization times of one trait in one region; old times are folded into a count."""

    __slots__ = ("base_count", "base_first", "base_last", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.base_count = 0
        self.base_first: float | None = None
        self.base_last: float | None = None

    def add(self, ts: float) -> None:
        if self.times and ts < self.times[-1]:
            ts = self.times[-1]
        self.times.append(ts)

    def compact(self, before: float) -> None:
        n = bisect.bisect_right(self.times, before)
        if n:
            if self.base_first is None:
                self.base_first = self.times[0]
            self.base_last = self.times[n - 1]
            self.base_count += n
            del self.times[:n]

    def stats(self, until: float | None) -> tuple[int, float | None, float | None]:
        n = len(self.times) if until is None else bisect.bisect_right(self.times, until)
        count = self.base_count + n
        first_seen = self.base_first if self.base_count else (self.times[0] if n else None)
        last_seen = self.times[n - 1] if n else self.base_last
        return count, first_seen, last_seen


@dataclass
class _Link:
    uuid: str
    region: int
    ts: float
    declared: DeclaredId


@dataclass
class _Profile:
    uuid: str
    home_region: int
    created_at: float
    traits: dict[int, dict[int, _Series]] = field(default_factory=dict)  # region -> trait -> series
    signals: dict[int, dict[str, tuple[list[str], float]]] = field(default_factory=dict)  # region -> key -> values
    mids: set[str] = field(default_factory=set)
    declared: dict[str, _Link] = field(default_factory=dict)  # cid key -> latest link to this profile
    calls: int = 0


class Engine:
    """All simulator state behind one lock."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.shutdown_event = threading.Event()
        self._lock = threading.RLock()
        self._generation = 0
        self.reset()

    # --- lifecycle --------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the configuration: profiles, links, opt-outs, denylists, log, counters, rules and faults."""
        cfg = self.config
        with self._lock:
            self.rules: RuleSet = cfg.rule_set()
            self.faults = FaultInjector(cfg.fault_config())
            self._rng = random.Random(cfg.seed)
            self._profiles: dict[str, _Profile] = {}
            self._mid_uuid: dict[str, str] = {}
            self._links: dict[str, list[_Link]] = {}
            self._optout: set[str] = {f"uuid:{u}" for u in cfg.opt_out_uuids}
            self._optout |= {f"mid:{m}" for m in cfg.opt_out_mids}
            self._optout |= {self._config_declared_key(d) for d in cfg.opt_out_declared_ids}
            self._denylisted: set[str] = {f"uuid:{u}" for u in cfg.denylisted_uuids}
            self._denylisted |= {f"mid:{m}" for m in cfg.denylisted_mids}
            self._denylisted |= {self._config_declared_key(d) for d in cfg.denylisted_declared_ids}
            self._id_calls: dict[str, collections.deque[float]] = {}
            self._calls: collections.deque[dict[str, Any]] = collections.deque(maxlen=cfg.max_logged_calls)
            self._seq = 0
            self._in_flight: dict[str, set[int]] = {}
            self._in_flight_total = 0
            self._max_in_flight_user = 0
            self._max_in_flight_total = 0
            self._violations: list[dict[str, Any]] = []
            self._counters: collections.Counter[str] = collections.Counter()
            self._started_at = time.time()
            self._generation += 1  # calls in flight across a reset do not touch the new counters

    def _config_declared_key(self, entry: dict[str, Any]) -> str:
        if "data_source_id" in entry:
            return f"cid:{int(entry['data_source_id'])}:{entry['id']}"
        code = str(entry["integration_code"])
        return f"cid:{self.config.ic_to_dpid().get(code, f'ic:{code}')}:{entry['id']}"

    # --- admin ------------------------------------------------------------------------------------------

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._calls))

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def fault_config(self) -> dict[str, Any]:
        with self._lock:
            return self.faults.config.to_dict()

    def set_faults(self, data: dict[str, Any]) -> dict[str, Any]:
        """Replace the fault config (``{}`` clears every fault). Raises FaultConfigError."""
        config = FaultConfig.from_dict(data)
        with self._lock:
            self.faults = FaultInjector(config)
            return config.to_dict()

    def rules_dict(self) -> dict[str, Any]:
        with self._lock:
            return self.rules.to_dict()

    def set_rules(self, data: dict[str, Any]) -> dict[str, Any]:
        """Replace traits / segments / destinations; sections not given stay as they are. Raises RuleError."""
        unknown = set(data) - {"traits", "segments", "destinations"}
        if unknown:
            raise ValueError(f"rules take traits, segments and destinations; unknown: {sorted(unknown)}")
        with self._lock:
            merged = self.rules.to_dict()
            merged.update(data)
            self.rules = RuleSet.from_dict(merged)
            return self.rules.to_dict()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            c = self._counters
            return {
                "calls_total": c["calls_total"],
                "calls_by_path": {k[5:]: v for k, v in sorted(c.items()) if k.startswith("path:")},
                "calls_by_status": {k[7:]: v for k, v in sorted(c.items()) if k.startswith("status:")},
                "faults_applied": {k[6:]: v for k, v in sorted(c.items()) if k.startswith("fault:")},
                "calls_with_cookie": c["calls_with_cookie"],
                "max_in_flight_per_user": self._max_in_flight_user,
                "max_in_flight_total": self._max_in_flight_total,
                "in_flight_now": self._in_flight_total,
                "concurrent_violations": copy.deepcopy(self._violations),
                "profiles": len(self._profiles),
                "denylisted": sorted(self._denylisted),
                "opted_out": sorted(self._optout),
                "uptime_seconds": round(time.time() - self._started_at, 3),
            }

    def health(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "status": "ok",
            "config": cfg.source,
            "partners": sorted(cfg.partners),
            "gslb_region": cfg.gslb_region,
            "id_service_region": cfg.id_service_region,
            "sync_delay_seconds": cfg.sync_delay_seconds,
        }

    # --- request lifecycle ------------------------------------------------------------------------------

    def begin(self, req: Request) -> Plan:
        """Register the call (log, in-flight), check target/size/type, decide faults. Never sleeps."""
        now = time.time()
        with self._lock:
            self._seq += 1
            target = normalize_host(req.header("x-forwarded-host")) or normalize_host(req.header("host"))
            kind = self._target_kind(target)
            region = self._region_for(kind, target, req.path)
            entry = self._new_entry(req, now, target, kind, region)
            self._calls.append(entry)
            self._counters["calls_total"] += 1
            self._counters[f"path:{req.path}"] += 1
            if req.header("cookie"):
                self._counters["calls_with_cookie"] += 1
            plan = Plan(self._seq, entry, time.monotonic(), target, kind, region, generation=self._generation)
            plan.raw = self._raw_params(req)
            if encoding_is_valid(plan.raw):
                plan.params = parse_params(plan.raw)
                entry["params"] = redact_params(plan.params)
            plan.early = self._early_checks(req, plan)
            if plan.early is not None:
                return plan
            plan.user_keys = self._user_keys(req, plan.params or [])
            entry["user_keys"] = list(plan.user_keys)
            self._enter_in_flight(plan, now)
            plan.decision = self.faults.decide(req.path, now)
            entry["fault"] = plan.decision.kind
            if plan.decision.kind:
                self._counters[f"fault:{plan.decision.kind}"] += 1
            if plan.decision.kind == "down":
                plan.early = Response.json(503, {"error": "service_unavailable", "message": "DCS is down (fault)"})
            elif plan.decision.kind == "rate_limited":
                plan.early = Response.json(
                    429,
                    {"error": "too_many_requests", "message": "global request rate exceeded (fault)"},
                    [("Retry-After", str(plan.decision.retry_after))],
                )
            return plan

    def process(self, req: Request, plan: Plan) -> Response:
        """Answer a request that passed :meth:`begin` (and whatever latency it was given)."""
        with self._lock:
            now = time.time()
            params = plan.params
            wants_json = first(params, "d_rtbd") == "json" if params is not None else "d_rtbd=json" in plan.raw
            ctx = _Ctx(req, plan, now, new_tid(self._rng), wants_json)
            if req.path == EVENT_PATH:
                return self._event(ctx)
            if req.path == ID_PATH:
                return self._id(ctx)
            return self._optout_call(ctx)

    def finish(self, plan: Plan, response: Response | None, outcome: str) -> None:
        """Record the answer (or its absence) in the log and leave the in-flight set."""
        with self._lock:
            entry = plan.entry
            entry["outcome"] = outcome
            entry["duration_ms"] = round((time.monotonic() - plan.started) * 1000, 3)
            if response is not None and outcome == "answered":
                entry["status"] = response.status
                entry["response"] = response.logged
                entry["response_headers"] = {"Content-Type": response.content_type, **dict(response.headers)}
                status_key = f"status:{response.status}"
            else:
                if response is not None:  # processed, but the answer was withheld (hang)
                    entry["withheld_response"] = response.logged
                status_key = f"status:{outcome}"
            if plan.generation == self._generation:
                self._counters[status_key] += 1
            self._leave_in_flight(plan)

    # --- begin helpers ----------------------------------------------------------------------------------

    def _target_kind(self, target: str | None) -> str | None:
        if target is None:
            return "none"
        if target in HOST_REGIONS:
            return "regional"
        if target == ID_SERVICE_HOST:
            return "id_service"
        if target == OPTOUT_HOST:
            return "www"
        if is_demdex_host(target) and target.split(".", 1)[0] in self.config.partners:
            return "alias"
        return None

    def _region_for(self, kind: str | None, target: str | None, path: str) -> int:
        if path == ID_PATH:
            return self.config.id_service_region
        if kind == "regional" and target is not None:
            return HOST_REGIONS[target]
        return self.config.gslb_region

    def _new_entry(self, req: Request, now: float, target: str | None, kind: str | None, region: int) -> dict[str, Any]:
        body = req.body.decode("latin-1") if req.body else None
        headers = {name: req.header(name) for name in LOGGED_HEADERS if req.header(name) is not None}
        return {
            "seq": self._seq,
            "time": _iso(now),
            "ts": now,
            "method": req.method,
            "path": req.path,
            "query": redact_raw(req.raw_query),
            "params": None,
            "headers": headers,
            "body": redact_raw(body) if body is not None else None,
            "target_host": target,
            "target_kind": kind,
            "region": region if kind is not None else None,
            "user_keys": [],
            "uuid": None,
            "status": None,
            "response": None,
            "response_headers": None,
            "fault": None,
            "outcome": "in_flight",
            "duration_ms": None,
        }

    def _early_checks(self, req: Request, plan: Plan) -> Response | None:
        cfg = self.config
        if plan.target_kind is None:
            known = [*REGION_HOSTS.values(), ID_SERVICE_HOST, OPTOUT_HOST, *(f"{a}.demdex.net" for a in cfg.partners)]
            return Response.json(
                421,
                {
                    "error": "misdirected_request",
                    "message": f"{plan.target!r} is not a known demdex host",
                    "target_host": plan.target,
                    "known_hosts": known,
                },
            )
        if req.path not in DCS_PATHS:
            return Response.json(404, {"error": "not_found", "message": f"no such DCS path {req.path!r}"})
        if req.method not in ("GET", "POST"):
            return Response.json(405, {"error": "method_not_allowed", "message": f"{req.method} is not supported"})
        target_len = len(req.path) + (len(req.raw_query) + 1 if req.raw_query else 0)
        if target_len > cfg.max_get_bytes:
            return Response.json(
                414, {"error": "uri_too_long", "message": f"request URL over {cfg.max_get_bytes} bytes"}
            )
        if req.method == "POST":
            if req.content_length > cfg.max_post_bytes:
                return Response.json(
                    413, {"error": "payload_too_large", "message": f"POST body over {cfg.max_post_bytes} bytes"}
                )
            ctype = (req.header("content-type") or "").split(";", 1)[0].strip().lower()
            if req.content_length and ctype != FORM_CONTENT_TYPE:
                return Response.json(
                    415, {"error": "unsupported_media_type", "message": f"POST bodies must be {FORM_CONTENT_TYPE}"}
                )
        return None

    @staticmethod
    def _raw_params(req: Request) -> str:
        body = req.body.decode("latin-1") if req.method == "POST" and req.body else ""
        return "&".join(part for part in (req.raw_query, body) if part)

    def _user_keys(self, req: Request, params: list[tuple[str, str]]) -> list[str]:
        keys: list[str] = []
        uuid = first(params, "d_uuid")
        cookie = req.cookie("demdex")
        for candidate in (uuid, cookie):
            if is_valid_id(candidate):
                keys.append(f"uuid:{candidate}")
        mid = first(params, "d_mid")
        if is_valid_id(mid):
            keys.append(f"mid:{mid}")
            if mid in self._mid_uuid:
                keys.append(f"uuid:{self._mid_uuid[mid]}")
        for declared in self._declared_values(params):
            keys.append(declared.key)
            links = self._links.get(declared.key)
            if links:
                keys.append(f"uuid:{links[-1].uuid}")
        return list(dict.fromkeys(keys))

    def _enter_in_flight(self, plan: Plan, now: float) -> None:
        overlapping: dict[str, list[int]] = {}
        for key in plan.user_keys:
            seqs = self._in_flight.setdefault(key, set())
            if seqs:
                overlapping[key] = sorted(seqs)
            seqs.add(plan.seq)
            self._max_in_flight_user = max(self._max_in_flight_user, len(seqs))
        if overlapping and len(self._violations) < MAX_VIOLATIONS_KEPT:
            self._violations.append(
                {
                    "seq": plan.seq,
                    "time": _iso(now),
                    "path": plan.entry["path"],
                    "users": sorted(overlapping),
                    "concurrent_with": sorted({s for seqs in overlapping.values() for s in seqs}),
                }
            )
        self._in_flight_total += 1
        self._max_in_flight_total = max(self._max_in_flight_total, self._in_flight_total)
        plan.tracked = True
        plan.entry["concurrent_with"] = sorted({s for seqs in overlapping.values() for s in seqs})

    def _leave_in_flight(self, plan: Plan) -> None:
        if not plan.tracked or plan.generation != self._generation:  # never tracked, or tracked before a reset
            return
        plan.tracked = False
        for key in plan.user_keys:
            seqs = self._in_flight.get(key)
            if seqs is not None:
                seqs.discard(plan.seq)
                if not seqs:
                    del self._in_flight[key]
        self._in_flight_total -= 1

    # --- shared protocol helpers ------------------------------------------------------------------------

    def _declared_values(self, params: list[tuple[str, str]]) -> list[DeclaredId]:
        """Valid declared IDs in request order (no limits applied)."""
        ic_map = self.config.ic_to_dpid()
        out = []
        for key, value in params:
            if key in ("d_cid", "d_cid_ic"):
                declared = parse_declared(key, value, ic_map)
                if declared is not None:
                    out.append(declared)
        legacy = self._legacy_declared(params)
        return [*out, legacy] if legacy is not None else out

    def _legacy_declared(self, params: list[tuple[str, str]]) -> DeclaredId | None:
        """The deprecated ``d_dpid`` + ``d_dpuuid`` pair (or bare ``dpid`` + ``dpuuid``), which still works."""
        dpid = first(params, "d_dpid") or first(params, "dpid")
        dpuuid = first(params, "d_dpuuid") or first(params, "dpuuid")
        if not (dpid and dpuuid):
            return None
        return parse_declared("d_cid", f"{dpid}\x01{dpuuid}", self.config.ic_to_dpid())

    def _declared_with_limits(self, ctx: _Ctx) -> list[DeclaredId]:
        """Declared IDs after validation (300/104) and the limits (301 + 309 each, 310 each)."""
        cfg = self.config
        ic_map = cfg.ic_to_dpid()
        valid: list[DeclaredId] = []
        sent = 0
        for key, value in ctx.params:
            if key not in ("d_cid", "d_cid_ic"):
                continue
            sent += 1
            declared = parse_declared(key, value, ic_map)
            if declared is None:
                ctx.errors.append(error(300, id=value.replace("\x01", "%01")))
            else:
                valid.append(declared)
        legacy = self._legacy_declared(ctx.params)
        if legacy is not None:
            sent += 1
            valid.append(legacy)
        if sent and not valid:
            ctx.errors.append(error(104))
        if len(valid) > cfg.max_declared_ids:
            ctx.errors.append(error(301, max=cfg.max_declared_ids, found=len(valid)))
            for dropped in valid[cfg.max_declared_ids :]:
                ctx.errors.append(error(309, id=dropped.id))
            valid = valid[: cfg.max_declared_ids]
        kept: list[DeclaredId] = []
        per_namespace: collections.Counter[str] = collections.Counter()
        for declared in valid:
            per_namespace[declared.namespace] += 1
            if per_namespace[declared.namespace] > cfg.max_declared_ids_per_namespace:
                ctx.errors.append(error(310, id=declared.id, namespace=declared.source))
            else:
                kept.append(declared)
        return list({d.key: d for d in kept}.values())

    def _count_for_denylist(self, keys: list[str], now: float) -> None:
        threshold = self.config.denylist_threshold_per_minute
        if threshold <= 0:
            return
        if len(self._id_calls) > 100_000:  # forget IDs idle for a minute
            self._id_calls = {k: w for k, w in self._id_calls.items() if w and w[-1] > now - 60.0}
        for key in keys:
            window = self._id_calls.setdefault(key, collections.deque())
            while window and window[0] <= now - 60.0:
                window.popleft()
            window.append(now)
            if len(window) > threshold:
                self._denylisted.add(key)

    def _visible_until(self, data_region: int, view_region: int | None, now: float) -> float | None:
        delay = self.config.sync_delay_seconds
        if view_region is None or data_region == view_region or delay <= 0:
            return None
        return now - delay

    def _linked_uuid(self, key: str, view_region: int | None, now: float) -> str | None:
        for link in reversed(self._links.get(key, [])):
            until = self._visible_until(link.region, view_region, now)
            if until is None or link.ts <= until:
                return link.uuid
        return None

    def _uuid_for_mid(self, mid: str, region: int, now: float) -> str:
        uuid = self._mid_uuid.get(mid)
        if uuid is None:
            uuid = self._mint_unique()
            self._mid_uuid[mid] = uuid
        self._profile(uuid, region, now).mids.add(mid)
        return uuid

    def _mint_unique(self) -> str:
        while True:
            uuid = mint_id(self._rng)
            if uuid not in self._profiles:
                return uuid

    def _profile(self, uuid: str, region: int, now: float) -> _Profile:
        profile = self._profiles.get(uuid)
        if profile is None:
            profile = _Profile(uuid, region, now)
            self._profiles[uuid] = profile
        return profile

    def _link(self, declared: DeclaredId, uuid: str, region: int, now: float) -> None:
        link = _Link(uuid, region, now, declared)
        self._links.setdefault(declared.key, []).append(link)
        self._profiles[uuid].declared[declared.key] = link

    def _visible_traits(
        self, profile: _Profile, view_region: int | None, now: float
    ) -> dict[int, tuple[int, float | None, float | None, dict[int, int]]]:
        """trait -> (count, first seen, last seen, {data region: count}) as ``view_region`` sees the profile."""
        out: dict[int, tuple[int, float | None, float | None, dict[int, int]]] = {}
        for data_region, traits in profile.traits.items():
            until = self._visible_until(data_region, view_region, now)
            for trait_id, series in traits.items():
                count, first_seen, last_seen = series.stats(until)
                if not count:
                    continue
                total, f0, l0, regions = out.get(trait_id, (0, None, None, {}))
                firsts = [t for t in (f0, first_seen) if t is not None]
                lasts = [t for t in (l0, last_seen) if t is not None]
                regions = {**regions, data_region: count}
                out[trait_id] = (total + count, min(firsts, default=None), max(lasts, default=None), regions)
        return out

    def _store(
        self, profile: _Profile, region: int, traits: set[int], signals: dict[str, list[str]], now: float
    ) -> None:
        region_traits = profile.traits.setdefault(region, {})
        compact_before = now - self.config.sync_delay_seconds
        for trait_id in traits:
            series = region_traits.setdefault(trait_id, _Series())
            series.add(now)
            if len(series.times) > 32:
                series.compact(compact_before)
        stored = profile.signals.setdefault(region, {})
        for key, values in signals.items():
            if not is_private_key(key) and not key.startswith("h_"):
                stored[key] = (list(values), now)
        profile.calls += 1

    def _answer(self, ctx: _Ctx, payload: dict[str, Any], *, uuid: str | None = None) -> Response:
        """A DCS answer: JSON with ``d_rtbd=json``, else the pixel; ``X-Error`` carries the codes."""
        body: dict[str, Any] = {"stuff": payload.pop("stuff", [])}
        if uuid is not None:
            body["uuid"] = uuid
        body["dcs_region"] = ctx.region
        body["tid"] = ctx.tid
        body.update(payload)
        if ctx.errors:
            body["errors"] = ctx.errors
        headers = [("DCS", f"{REGION_HOSTS[ctx.region]} (simulator)")]
        if ctx.errors:
            headers.append(("X-Error", x_error_header(ctx.errors)))
        if uuid is not None and self.config.set_demdex_cookie:
            headers.append(("Set-Cookie", f"demdex={uuid}; Path=/; Max-Age=15552000"))
        ctx.plan.entry["uuid"] = uuid
        ctx.plan.entry["errors"] = [e["code"] for e in ctx.errors]
        if ctx.wants_json:
            return Response(200, _json_bytes(body), "application/json", headers, logged=body)
        return Response(200, PIXEL_GIF, "image/gif", headers, logged={"pixel": True, "would_have_sent": body})

    # --- /event -----------------------------------------------------------------------------------------

    def _event(self, ctx: _Ctx) -> Response:
        if ctx.plan.params is None:
            ctx.errors.append(error(311))
            return self._answer(ctx, {})
        partner = self._partner_from_host(ctx)
        if partner is None:
            return self._answer(ctx, {})
        org = first(ctx.params, "d_orgid")
        if org is not None and org not in self.config.partners[partner]:
            ctx.errors.append(error(2, id=org))
            return self._answer(ctx, {})
        ids = self._event_ids(ctx)
        if not self._apply_denylist(ctx, ids):
            return self._answer(ctx, {})
        resolved = ids.uuid or (self._mid_uuid.get(ids.mid) if ids.mid else None)
        for declared in ids.declared:
            if resolved is not None:
                break
            resolved = self._linked_uuid(declared.key, ctx.region, ctx.now)
        opted = self._opted_out(ids, resolved)
        if opted is not None:
            ctx.errors.append(error(171, id=opted))
            return self._answer(ctx, {})
        if resolved is not None and f"uuid:{resolved}" in self._denylisted:
            ctx.errors.append(error(307, id=resolved))
            return self._answer(ctx, {})
        uuid = resolved or self._mint_unique()
        profile = self._profile(uuid, ctx.region, ctx.now)
        if ids.mid:
            self._mid_uuid.setdefault(ids.mid, uuid)
            profile.mids.add(ids.mid)
        for declared in ids.declared:
            self._link(declared, uuid, ctx.region, ctx.now)
        return self._event_outcome(ctx, profile)

    def _partner_from_host(self, ctx: _Ctx) -> str | None:
        host = normalize_host(ctx.req.header("host"))
        if host is None or not is_demdex_host(host):
            ctx.errors.append(error(100))
            return None
        alias = host.split(".", 1)[0]
        if alias not in self.config.partners:
            ctx.errors.append(error(1, host=host))
            return None
        return alias

    def _event_ids(self, ctx: _Ctx) -> _Ids:
        ids = _Ids()
        uuid = first(ctx.params, "d_uuid")
        if uuid is not None:
            if is_valid_id(uuid):
                ids.uuid = uuid
            else:
                ctx.errors.append(error(102, id=uuid))
        cookie = ctx.req.cookie("demdex")
        if cookie == "NOTARGET":
            ids.notarget = True
        elif ids.uuid is None and is_valid_id(cookie):
            ids.uuid = cookie
        mid = first(ctx.params, "d_mid")
        if mid is not None:
            if is_valid_id(mid):
                ids.mid = mid
            else:
                ctx.errors.append(error(101, id=mid))
        ids.declared = self._declared_with_limits(ctx)
        ids.sent_any_valid = bool(ids.uuid or ids.mid or ids.declared)
        return ids

    def _apply_denylist(self, ctx: _Ctx, ids: _Ids) -> bool:
        """Count the IDs, drop denylisted ones (306/307, 303). False when nothing is left to work on."""
        keys = [f"uuid:{ids.uuid}"] if ids.uuid else []
        keys += [f"mid:{ids.mid}"] if ids.mid else []
        keys += [d.key for d in ids.declared]
        self._count_for_denylist(keys, ctx.now)
        blocked: list[str] = []
        for attr, prefix in (("uuid", "uuid"), ("mid", "mid")):
            value = getattr(ids, attr)
            if value and f"{prefix}:{value}" in self._denylisted:
                ctx.errors += [error(306, id=value), error(307, id=value)]
                blocked.append(value)
                setattr(ids, attr, None)
        kept = []
        for declared in ids.declared:
            if declared.key in self._denylisted:
                ctx.errors.append(error(303, id=declared.id))
                blocked.append(declared.id)
            else:
                kept.append(declared)
        ids.declared = kept
        if blocked and not (ids.uuid or ids.mid or ids.declared):
            if not any(e["code"] == 307 for e in ctx.errors):
                ctx.errors.append(error(307, id=blocked[0]))
            return False
        return True

    def _opted_out(self, ids: _Ids, resolved: str | None) -> str | None:
        """The first opted-out ID of the call (the one named in error 171), or None."""
        if ids.notarget:
            return "NOTARGET"
        candidates = [(f"uuid:{ids.uuid}", ids.uuid), (f"mid:{ids.mid}", ids.mid)]
        candidates += [(d.key, d.id) for d in ids.declared]
        candidates.append((f"uuid:{resolved}", resolved))
        for key, label in candidates:
            if label and key in self._optout:
                return label
        return None

    def _event_signals(self, ctx: _Ctx) -> tuple[dict[str, list[str]], set[int]]:
        signals: dict[str, list[str]] = {}
        for key, value in ctx.params:
            if not key or key.startswith(("d_", "h_")) or key in NON_SIGNAL_KEYS:
                continue
            signals.setdefault(key, []).extend(value.split(","))
        for name, header in HEADER_SIGNALS:
            value = ctx.req.header(header)
            if value:
                signals[name] = [value]
        sids = {int(v) for v in split_serialized(all_values(ctx.params, "d_sid")) if v.strip().isdigit()}
        return signals, sids

    def _event_outcome(self, ctx: _Ctx, profile: _Profile) -> Response:
        signals, sids = self._event_signals(ctx)
        realized = self.rules.realized_traits(signals) | sids
        self._store(profile, ctx.region, realized, signals, ctx.now)
        traits_now = set(self._visible_traits(profile, ctx.region, ctx.now))
        segments = self.rules.qualified_segments(traits_now)
        segment_ids = {s.id for s in segments}
        payload: dict[str, Any] = {"stuff": self.rules.stuff(segment_ids)}
        if first(ctx.params, "d_dst") == "1":
            payload["dests"] = self.rules.dests(
                segment_ids, uuid=profile.uuid, region=ctx.region, now=ctx.now, rnd=self._rng.randint(0, 2**31)
            )
        cts = first(ctx.params, "d_cts")
        if cts in ("1", "2"):
            payload["traits"] = sorted(traits_now)
            payload["segments"] = sorted(s.legacy_id if cts == "1" else s.id for s in segments)
        ctx.plan.entry["realized_traits"] = sorted(realized)
        return self._answer(ctx, payload, uuid=profile.uuid)

    # --- /id --------------------------------------------------------------------------------------------

    def _id_error(self, ctx: _Ctx, code: int, message: str, **values: Any) -> Response:
        ctx.errors.append(error(code, **values))
        body = {"d_mid": None, "error_msg": message, "errors": ctx.errors, "tid": ctx.tid}
        ctx.plan.entry["errors"] = [e["code"] for e in ctx.errors]
        return Response.json(200, body, [("X-Error", x_error_header(ctx.errors))])

    def _id(self, ctx: _Ctx) -> Response:
        if ctx.plan.params is None:
            return self._id_error(ctx, 311, "Request contains invalid parameters")
        if first(ctx.params, "d_ver") != "2":
            return self._id_error(ctx, 0, "d_ver=2 is required")
        org = first(ctx.params, "d_orgid")
        partner = self.config.partner_for_org(org) if org else None
        if partner is None:
            return self._id_error(ctx, 2, f"Invalid d_orgid value passed in request: {org or ''}", id=org or "")
        mid = first(ctx.params, "d_mid")
        if mid is not None and not is_valid_id(mid):
            return self._id_error(ctx, 101, f"Invalid marketing cloud id passed in {mid}", id=mid)
        declared = self._declared_with_limits(ctx)
        keys = ([f"mid:{mid}"] if mid else []) + [d.key for d in declared]
        self._count_for_denylist(keys, ctx.now)
        blocked = mid is not None and f"mid:{mid}" in self._denylisted
        if blocked:
            ctx.errors += [error(306, id=mid), error(307, id=mid)]
        for dropped in [d for d in declared if d.key in self._denylisted]:
            ctx.errors.append(error(303, id=dropped.id))
        declared = [d for d in declared if d.key not in self._denylisted]
        mid = mid or mint_id(self._rng)
        uuid = self._mid_uuid.get(mid)
        opted = (
            f"mid:{mid}" in self._optout
            or (uuid is not None and f"uuid:{uuid}" in self._optout)
            or any(d.key in self._optout for d in declared)
        )
        if declared and not opted and not blocked:
            uuid = self._uuid_for_mid(mid, ctx.region, ctx.now)
            for item in declared:
                self._link(item, uuid, ctx.region, ctx.now)
        body: dict[str, Any] = {
            "d_mid": mid,
            "dcs_region": ctx.region,
            "id_sync_ttl": ID_SYNC_TTL,
            "d_blob": blob_for(mid, ctx.region),
            "d_ottl": OPTOUT_TTL,
            "ibs": [],
            "subdomain": partner,
            "tid": ctx.tid,
        }
        if opted:
            body["d_optout"] = ["global"]
        if ctx.errors:
            body["errors"] = ctx.errors
        ctx.plan.entry["errors"] = [e["code"] for e in ctx.errors]
        ctx.plan.entry["mid"] = mid
        headers = [("X-Error", x_error_header(ctx.errors))] if ctx.errors else []
        return Response.json(200, body, headers)

    # --- /demoptout -------------------------------------------------------------------------------------

    def _optout_call(self, ctx: _Ctx) -> Response:
        if ctx.plan.params is None:
            ctx.errors.append(error(311))
            return self._answer(ctx, {})
        opted: list[tuple[str, str]] = []  # (key, label)
        uuid = first(ctx.params, "d_uuid")
        if uuid is not None:
            if is_valid_id(uuid):
                opted.append((f"uuid:{uuid}", uuid))
            else:
                ctx.errors.append(error(102, id=uuid))
        mid = first(ctx.params, "d_mid")
        org = first(ctx.params, "d_orgid")
        if mid is not None:
            if not is_valid_id(mid):
                ctx.errors.append(error(101, id=mid))
            elif org is not None and org not in self.config.org_ids():
                ctx.errors.append(error(2, id=org))
            else:
                opted.append((f"mid:{mid}", mid))
        for declared in self._declared_values(ctx.params):
            opted.append((declared.key, declared.id))
            device = self._linked_uuid(declared.key, None, ctx.now)
            if device is not None:  # the CRM ID and the last device linked to it
                opted.append((f"uuid:{device}", device))
        cookie = ctx.req.cookie("demdex")
        if not opted and is_valid_id(cookie):
            opted.append((f"uuid:{cookie}", cookie or ""))
        for key, _label in opted:
            self._optout.add(key)
        ctx.plan.entry["opted_out"] = [key for key, _ in opted]
        if opted:
            ctx.errors.append(error(171, id=opted[0][1]))
        response = self._answer(ctx, {})
        response.headers.append(("Set-Cookie", "demdex=NOTARGET; Path=/; Max-Age=315360000"))
        return response

    # --- profiles ---------------------------------------------------------------------------------------

    def profile_view(self, uuid: str, region: int | None = None) -> dict[str, Any] | None:
        """The stored profile: home region, traits (all regions, and as each region sees them), declared IDs."""
        with self._lock:
            profile = self._profiles.get(uuid)
            if profile is None:
                return None
            now = time.time()
            regions = {str(r): self._region_view(profile, r, now) for r in REGION_HOSTS}
            if region is not None:
                regions = {str(region): regions[str(region)]} if str(region) in regions else {}
            all_traits = self._visible_traits(profile, None, now)
            return {
                "uuid": profile.uuid,
                "home_region": profile.home_region,
                "created_at": _iso(profile.created_at),
                "mids": sorted(profile.mids),
                "declared_ids": [self._link_view(link) for link in profile.declared.values()],
                "traits": self._traits_view(all_traits),
                "segments": sorted(s.id for s in self.rules.qualified_segments(set(all_traits))),
                "signals": {
                    str(r): {k: {"values": v, "last_seen": _iso(ts)} for k, (v, ts) in sigs.items()}
                    for r, sigs in profile.signals.items()
                },
                "calls": profile.calls,
                "opted_out": f"uuid:{uuid}" in self._optout,
                "denylisted": f"uuid:{uuid}" in self._denylisted,
                "regions": regions,
            }

    def _region_view(self, profile: _Profile, region: int, now: float) -> dict[str, Any]:
        traits = self._visible_traits(profile, region, now)
        delay = self.config.sync_delay_seconds
        visible = region == profile.home_region or profile.created_at <= now - delay or region in profile.traits
        declared = [
            self._link_view(link)
            for link in profile.declared.values()
            if self._linked_uuid(link.declared.key, region, now) == profile.uuid
        ]
        return {
            "host": REGION_HOSTS[region],
            "visible": visible,
            "traits": self._traits_view(traits),
            "segments": sorted(s.id for s in self.rules.qualified_segments(set(traits))),
            "declared_ids": declared,
        }

    @staticmethod
    def _traits_view(
        traits: dict[int, tuple[int, float | None, float | None, dict[int, int]]],
    ) -> dict[str, dict[str, Any]]:
        return {
            str(trait_id): {
                "count": count,
                "first_seen": _iso(first_seen) if first_seen else None,
                "last_seen": _iso(last_seen) if last_seen else None,
                "by_region": {str(r): n for r, n in sorted(regions.items())},
            }
            for trait_id, (count, first_seen, last_seen, regions) in sorted(traits.items())
        }

    @staticmethod
    def _link_view(link: _Link) -> dict[str, Any]:
        declared = link.declared
        return {
            "param": declared.param,
            "data_source": declared.source,
            "namespace": declared.namespace,
            "id": declared.id,
            "auth_state": declared.auth_state,
            "region": link.region,
            "linked_at": _iso(link.ts),
        }
