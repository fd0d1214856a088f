"""Device alarms as records (seed §7.3 c 状态监控, e 故障定位): SQLAlchemy Core, SQLite by default,
PostgreSQL by URL.

An alarm follows ThingsBoard's life cycle — ``ACTIVE_UNACK`` → (acknowledge) ``ACTIVE_ACK`` →
(clear) ``CLEARED_ACK``, or ``ACTIVE_UNACK`` → (clear) ``CLEARED_UNACK`` → (acknowledge)
``CLEARED_ACK``.  Tables::

    alarms(id, device_id, type, severity, state, raised_at, updated_at, acknowledged_at,
           acknowledged_by, cleared_at, details JSON, cause)
    alarm_log(id, alarm_id, at, action, who, state, details JSON)    one row per transition
    device_status(device_id, enterprise_id, type, node_id, collector, online, last_seen, battery,
                  signal, latency_p50_ms, …, alarms, cause, checked_at)   the monitor's last look
    monitor_state(key, value, at)                         e.g. whether the monitor's link is up

* at most one *active* alarm per (device, type): a partial unique index enforces it, and
  :meth:`AlarmStore.raise_` of an alarm that is already active updates it (severity, details,
  cause, ``updated_at``) instead of adding a second one — raising is idempotent;
* ``cause`` is the id of the fault the alarm is a consequence of (see
  :func:`workbench.devices.monitor.DeviceMonitor.localise`: ``collector:C-F01``, ``platform``), so a
  dashboard shows one problem, not thirty; the fault itself is an alarm of its subject (the
  collector, or ``*`` for the platform) whose ``details.fault_id`` is that id;
* times are naive UTC ``datetime`` (as in the device registry); ``at`` arguments accept epoch
  seconds, ``datetime`` (aware → UTC) or ``None`` (now).
* ``device_status`` holds the monitor's latest :meth:`~workbench.devices.monitor.DeviceMonitor.snapshot`
  (one row per device, replaced at every check by :meth:`AlarmStore.save_status`): the monitor keeps
  its state in memory, and the apps — another process — read it here, each enterprise its own
  devices (:meth:`AlarmStore.device_status`, :meth:`AlarmStore.alarms_of`).  :func:`faults` turns the
  active alarms into the fault-localisation view (platform link · collector · device).
"""
from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import sqlalchemy as sa

from workbench.core.errors import WorkbenchError
from workbench.core.sqlstore import create_engine, create_tables

__all__ = [
    "SEVERITIES",
    "STATES",
    "STATUS_COLUMNS",
    "Alarm",
    "AlarmError",
    "AlarmStore",
    "faults",
    "meter_subject",
    "raise_anomalies",
    "to_utc",
]

STATES = ("ACTIVE_UNACK", "ACTIVE_ACK", "CLEARED_UNACK", "CLEARED_ACK")
ACTIVE_STATES = ("ACTIVE_UNACK", "ACTIVE_ACK")
#: ThingsBoard's severities, most severe first
SEVERITIES = ("CRITICAL", "MAJOR", "MINOR", "WARNING", "INDETERMINATE")
#: the columns of ``device_status`` (from :meth:`DeviceMonitor.snapshot`), besides ``checked_at``
STATUS_COLUMNS = ("device_id", "enterprise_id", "type", "node_id", "collector", "online", "last_seen", "age_s",
                  "battery", "signal", "firmware", "rate_per_min", "latency_p50_ms", "latency_stored_p50_ms",
                  "gaps", "messages", "bad_messages", "timeout_s", "alarms", "cause")
#: where the platform's own alarms are kept (LINK_DOWN): not a device, shown to every enterprise
PLATFORM_SUBJECT = "*"
#: alarms on a meter rather than a monitored device (an anomaly in its consumption, issue 15) are
#: kept under the subject ``meter:<enterprise>:<meter_id>`` (:func:`meter_subject`) and shown to
#: that enterprise by :meth:`AlarmStore.alarms_of`
METER_SUBJECT = "meter:"


class AlarmError(WorkbenchError, ValueError):
    pass


def to_utc(at) -> _dt.datetime:
    """Epoch seconds / datetime / None (now) → naive UTC datetime (microseconds kept)."""
    if at is None:
        return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)
    if isinstance(at, _dt.datetime):
        return at.astimezone(_dt.UTC).replace(tzinfo=None) if at.tzinfo else at
    if hasattr(at, "to_pydatetime"):                    # pandas.Timestamp
        return to_utc(at.to_pydatetime())
    return _dt.datetime.fromtimestamp(float(at), _dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Alarm:
    id: int
    device_id: str
    type: str
    severity: str
    state: str
    raised_at: _dt.datetime
    updated_at: _dt.datetime
    acknowledged_at: _dt.datetime | None = None
    acknowledged_by: str | None = None
    cleared_at: _dt.datetime | None = None
    details: dict = field(default_factory=dict)
    cause: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def acknowledged(self) -> bool:
        return self.state.endswith("_ACK") and not self.state.endswith("UNACK")

    def to_dict(self) -> dict:
        out = asdict(self)
        for k in ("raised_at", "updated_at", "acknowledged_at", "cleared_at"):
            out[k] = out[k].isoformat() if out[k] else None
        return out


def _json(details) -> dict:
    if details is None:
        return {}
    return json.loads(json.dumps(dict(details), default=str, allow_nan=False))


class AlarmStore:
    """Alarm records in a SQL database (see the module doc)."""

    def __init__(self, url: str = "sqlite://", *, echo: bool = False):
        self.url = url
        self.engine = create_engine(url, echo=echo, error=AlarmError)
        md = self.metadata = sa.MetaData()
        self.alarms = sa.Table(
            "alarms", md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("device_id", sa.String(64), nullable=False),
            sa.Column("type", sa.String(40), nullable=False),
            sa.Column("severity", sa.String(16), nullable=False),
            sa.Column("state", sa.String(16), nullable=False, index=True),
            sa.Column("raised_at", sa.DateTime, nullable=False),
            sa.Column("updated_at", sa.DateTime, nullable=False),
            sa.Column("acknowledged_at", sa.DateTime, nullable=True),
            sa.Column("acknowledged_by", sa.String(200), nullable=True),
            sa.Column("cleared_at", sa.DateTime, nullable=True),
            sa.Column("details", sa.JSON, nullable=False),
            sa.Column("cause", sa.String(200), nullable=True, index=True),
            sa.Index("ix_alarms_device_type", "device_id", "type"),
            # one active alarm per (device, type) — also under concurrent writers
            sa.Index("ux_alarms_active", "device_id", "type", unique=True,
                     sqlite_where=sa.text("cleared_at IS NULL"),
                     postgresql_where=sa.text("cleared_at IS NULL")),
        )
        self.log = sa.Table(
            "alarm_log", md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("alarm_id", sa.Integer, sa.ForeignKey("alarms.id"), nullable=False, index=True),
            sa.Column("at", sa.DateTime, nullable=False),
            sa.Column("action", sa.String(16), nullable=False),
            sa.Column("who", sa.String(200), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("details", sa.JSON, nullable=False),
        )
        self.status = sa.Table(
            "device_status", md,
            sa.Column("device_id", sa.String(64), primary_key=True),
            sa.Column("enterprise_id", sa.String(64), nullable=False, index=True),
            sa.Column("type", sa.String(40), nullable=False),
            sa.Column("node_id", sa.String(128), nullable=False),
            sa.Column("collector", sa.String(64), nullable=False),
            sa.Column("online", sa.Boolean, nullable=True),
            sa.Column("last_seen", sa.DateTime, nullable=True),
            *[sa.Column(c, sa.Float, nullable=True) for c in ("age_s", "battery", "signal", "rate_per_min",
                                                                "latency_p50_ms", "latency_stored_p50_ms", "timeout_s")],
            sa.Column("firmware", sa.String(64), nullable=True),
            *[sa.Column(c, sa.Integer, nullable=False) for c in ("gaps", "messages", "bad_messages")],
            sa.Column("alarms", sa.String(400), nullable=False),
            sa.Column("cause", sa.String(400), nullable=False),
            sa.Column("checked_at", sa.DateTime, nullable=False),
        )
        self.state = sa.Table(
            "monitor_state", md,
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("value", sa.JSON, nullable=False),
            sa.Column("at", sa.DateTime, nullable=False),
        )
        create_tables(md, self.engine, error=AlarmError)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _alarm(row) -> Alarm:
        r = row._mapping
        return Alarm(id=r["id"], device_id=r["device_id"], type=r["type"], severity=r["severity"],
                     state=r["state"], raised_at=r["raised_at"], updated_at=r["updated_at"],
                     acknowledged_at=r["acknowledged_at"], acknowledged_by=r["acknowledged_by"],
                     cleared_at=r["cleared_at"], details=dict(r["details"] or {}), cause=r["cause"])

    def _active_row(self, conn, device_id: str, type: str):
        t = self.alarms
        return conn.execute(sa.select(t).where(t.c.device_id == device_id, t.c.type == type,
                                               t.c.cleared_at.is_(None))).first()

    def _log(self, conn, alarm_id: int, at, action: str, who: str, state: str, details=None) -> None:
        conn.execute(sa.insert(self.log).values(alarm_id=alarm_id, at=at, action=action, who=who, state=state,
                                                details=_json(details)))

    def get(self, alarm_id: int) -> Alarm:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.alarms).where(self.alarms.c.id == int(alarm_id))).first()
        if row is None:
            raise AlarmError(f"alarm {alarm_id} not found")
        return self._alarm(row)

    # ------------------------------------------------------------------ transitions
    def raise_(self, device_id: str, type: str, *, severity: str = "MAJOR", at=None, details=None,
               cause: str | None = None, who: str = "monitor") -> Alarm:
        """Raise (or, if one is already active for ``device_id`` + ``type``, update) an alarm."""
        if severity not in SEVERITIES:
            raise AlarmError(f"severity {severity!r} must be one of {list(SEVERITIES)}")
        at = to_utc(at)
        details = _json(details)
        t = self.alarms
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    row = self._active_row(conn, device_id, type)
                    if row is not None:
                        changes = {"severity": severity, "details": details, "cause": cause, "updated_at": at}
                        conn.execute(sa.update(t).where(t.c.id == row.id).values(**changes))
                        self._log(conn, row.id, at, "update", who, row.state, {"severity": severity, "cause": cause})
                        alarm_id = row.id
                    else:
                        alarm_id = conn.execute(sa.insert(t).values(
                            device_id=device_id, type=type, severity=severity, state="ACTIVE_UNACK", raised_at=at,
                            updated_at=at, details=details, cause=cause)).inserted_primary_key[0]
                        self._log(conn, alarm_id, at, "raise", who, "ACTIVE_UNACK", details)
                return self.get(alarm_id)
            except sa.exc.IntegrityError:               # a concurrent writer raised it first: update it
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def acknowledge(self, alarm_id: int, who: str, *, at=None) -> Alarm:
        """Acknowledge (ACTIVE_UNACK → ACTIVE_ACK, CLEARED_UNACK → CLEARED_ACK); who and when are
        recorded.  Acknowledging an acknowledged alarm changes nothing."""
        if not who:
            raise AlarmError("acknowledge: 'who' is required (audit)")
        at = to_utc(at)
        t = self.alarms
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == int(alarm_id))).first()
            if row is None:
                raise AlarmError(f"alarm {alarm_id} not found")
            if row.state in ("ACTIVE_UNACK", "CLEARED_UNACK"):
                state = row.state.replace("UNACK", "ACK")
                conn.execute(sa.update(t).where(t.c.id == row.id).values(
                    state=state, acknowledged_at=at, acknowledged_by=who, updated_at=at))
                self._log(conn, row.id, at, "acknowledge", who, state)
        return self.get(alarm_id)

    def clear(self, device_id: str, type: str, *, at=None, details=None, who: str = "monitor") -> Alarm | None:
        """Clear the active alarm of ``device_id`` + ``type`` (ACTIVE_ACK → CLEARED_ACK, ACTIVE_UNACK →
        CLEARED_UNACK); ``None`` if none is active."""
        at = to_utc(at)
        t = self.alarms
        with self.engine.begin() as conn:
            row = self._active_row(conn, device_id, type)
            if row is None:
                return None
            state = "CLEARED_ACK" if row.state == "ACTIVE_ACK" else "CLEARED_UNACK"
            values = {"state": state, "cleared_at": at, "updated_at": at}
            if details:
                values["details"] = {**dict(row.details or {}), "cleared": _json(details)}
            conn.execute(sa.update(t).where(t.c.id == row.id).values(**values))
            self._log(conn, row.id, at, "clear", who, state, details)
        return self.get(row.id)

    def apply(self, events: Iterable) -> list[Alarm]:
        """Write :class:`workbench.devices.monitor.AlarmEvent` s (``raise``/``update`` → :meth:`raise_`,
        ``clear`` → :meth:`clear`); returns the alarms touched."""
        out = []
        for e in events:
            if e.action == "clear":
                a = self.clear(e.device_id, e.type, at=e.at, details=e.details or None)
            else:
                a = self.raise_(e.device_id, e.type, severity=e.severity, at=e.at, details=e.details, cause=e.cause)
            if a is not None:
                out.append(a)
        return out

    # ------------------------------------------------------------------ reads
    def active(self, device_id: str | None = None, *, cause: str | None = None) -> list[Alarm]:
        """Active alarms (ACTIVE_UNACK, ACTIVE_ACK), oldest first."""
        t = self.alarms
        q = sa.select(t).where(t.c.cleared_at.is_(None)).order_by(t.c.raised_at, t.c.id)
        if device_id is not None:
            q = q.where(t.c.device_id == device_id)
        if cause is not None:
            q = q.where(t.c.cause == cause)
        with self.engine.connect() as conn:
            return [self._alarm(r) for r in conn.execute(q)]

    def history(self, device: str | None = None, *, type: str | None = None) -> list[Alarm]:
        """Every alarm (any state), oldest first."""
        t = self.alarms
        q = sa.select(t).order_by(t.c.raised_at, t.c.id)
        if device is not None:
            q = q.where(t.c.device_id == device)
        if type is not None:
            q = q.where(t.c.type == type)
        with self.engine.connect() as conn:
            return [self._alarm(r) for r in conn.execute(q)]

    def transitions(self, alarm_id: int | None = None) -> list[dict]:
        """The transition log (``raise``, ``update``, ``acknowledge``, ``clear``; who, when, state)."""
        q = sa.select(self.log).order_by(self.log.c.id)
        if alarm_id is not None:
            q = q.where(self.log.c.alarm_id == int(alarm_id))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # ------------------------------------------------------------------ device status
    def save_status(self, snapshot, *, at=None, link_up: bool | None = None) -> int:
        """Replace ``device_status`` with ``snapshot`` (:meth:`DeviceMonitor.snapshot`'s frame) in
        one transaction, so a reader sees one whole check; ``link_up``: the monitor's own broker
        link (``monitor_state``).  Returns the rows written."""
        import pandas as pd

        at = to_utc(at)
        df = snapshot.reindex(columns=list(STATUS_COLUMNS))
        rows = []
        for r in df.to_dict("records"):
            row = {}
            for c in STATUS_COLUMNS:
                v = r[c]
                if c == "last_seen":
                    v = None if pd.isna(v) else to_utc(v)
                elif c in ("gaps", "messages", "bad_messages"):
                    v = 0 if pd.isna(v) else int(v)
                elif c == "online":
                    v = None if pd.isna(v) else bool(v)
                elif c in ("device_id", "enterprise_id", "type", "node_id", "collector", "alarms", "cause"):
                    v = "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
                elif c == "firmware":
                    v = None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
                else:
                    v = None if v is None or pd.isna(v) else float(v)
                row[c] = v
            row["checked_at"] = at
            rows.append(row)
        with self.engine.begin() as conn:
            conn.execute(sa.delete(self.status))
            if rows:
                conn.execute(sa.insert(self.status), rows)
            if link_up is not None:
                conn.execute(sa.delete(self.state).where(self.state.c.key == "link_up"))
                conn.execute(sa.insert(self.state).values(key="link_up", value={"up": bool(link_up)}, at=at))
        return len(rows)

    def device_status(self, enterprise: str | None = None):
        """The monitor's last look at the devices of ``enterprise`` (``None``: every device) — one
        row per device, columns :data:`STATUS_COLUMNS` + ``checked_at`` (naive UTC)."""
        import pandas as pd

        q = sa.select(self.status).order_by(self.status.c.device_id)
        if enterprise is not None:
            q = q.where(self.status.c.enterprise_id == enterprise)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        df = pd.DataFrame(rows, columns=[*STATUS_COLUMNS, "checked_at"])
        df["online"] = df["online"].astype("boolean")
        return df

    def monitor_link(self) -> tuple[bool | None, _dt.datetime | None]:
        """``(up, when recorded)`` of the monitor's own broker link (``None``: never recorded)."""
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(self.state).where(self.state.c.key == "link_up")).first()
        return (None, None) if r is None else (bool((r.value or {}).get("up")), r.at)

    def enterprise_of(self, device_id: str) -> str | None:
        """The enterprise a device belongs to, as the monitor last recorded it (``None``: unknown;
        the platform subject ``*`` belongs to none)."""
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(self.status.c.enterprise_id)
                             .where(self.status.c.device_id == device_id)).first()
        return None if r is None else r[0]

    def alarms_of(self, enterprise: str, *, include_cleared_unack: bool = True) -> list[Alarm]:
        """The alarms an enterprise's people must see: the active ones of its devices (and of the
        platform, whose link fault concerns everyone), plus — ``include_cleared_unack`` — those
        cleared but never acknowledged; most severe first, then oldest.  Devices are the
        enterprise's by the monitor's ``device_status``, meters by their subject
        (:func:`meter_subject`): the filter runs in the query."""
        t, st = self.alarms, self.status
        mine = sa.select(st.c.device_id).where(st.c.enterprise_id == enterprise)
        states = ["ACTIVE_UNACK", "ACTIVE_ACK"] + (["CLEARED_UNACK"] if include_cleared_unack else [])
        q = (sa.select(t).where(t.c.state.in_(states))
             .where(sa.or_(t.c.device_id.in_(mine), t.c.device_id == PLATFORM_SUBJECT,
                           t.c.device_id.startswith(f"{METER_SUBJECT}{enterprise}:", autoescape=True)))
             .order_by(t.c.raised_at, t.c.id))
        with self.engine.connect() as conn:
            out = [self._alarm(r) for r in conn.execute(q)]
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        return sorted(out, key=lambda a: rank.get(a.severity, len(rank)))

    def dispose(self) -> None:
        self.engine.dispose()


#: fault scope → (zh, en) of where the fault is
_WHERE = {"platform": ("平台链路（代理/网关）", "platform link (broker/gateway)"),
          "collector": ("采集器或其链路", "collector or its link"),
          "device": ("设备", "device")}


def meter_subject(enterprise: str, meter_id: str) -> str:
    """The alarm subject of an enterprise's meter: ``meter:<enterprise>:<meter_id>``."""
    if not enterprise or ":" in enterprise or not meter_id:
        raise AlarmError(f"meter alarm: enterprise {enterprise!r} and meter {meter_id!r} must be given, "
                         f"the enterprise without ':'")
    subject = f"{METER_SUBJECT}{enterprise}:{meter_id}"
    if len(subject) > 64:
        raise AlarmError(f"meter alarm subject {subject!r} is longer than 64 characters")
    return subject


def raise_anomalies(store: AlarmStore, enterprise: str, detections, *, type: str = "ANOMALY", at=None,
                    who: str = "models") -> list[Alarm]:
    """Detections of anomalies in consumption (a frame with ``meter_id, ts_start, ts_end, kind,
    score, method`` — :func:`workbench.models.anomalies.detect`) → one active ``type`` alarm per
    meter of ``enterprise`` (raising again updates it): ``details`` holds the enterprise, the meter,
    the number of detections, their kinds and the latest one.  Severity: ``MAJOR`` for a spike or a
    stuck meter, ``MINOR`` otherwise."""
    out = []
    if detections is None or len(detections) == 0:
        return out
    for meter, g in detections.groupby("meter_id", sort=True):
        g = g.sort_values("ts_start")
        last = g.iloc[-1]
        kinds = sorted(set(g["kind"]))
        details = {"enterprise_id": enterprise, "meter_id": str(meter), "detections": len(g), "kinds": kinds,
                   "latest": {k: (str(last[k]) if k in ("ts_start", "ts_end") else last[k])
                              for k in ("kind", "ts_start", "ts_end", "score", "method") if k in g.columns}}
        severity = "MAJOR" if {"spike", "stuck"} & set(kinds) else "MINOR"
        out.append(store.raise_(meter_subject(enterprise, str(meter)), type, severity=severity, at=at,
                                details=details, who=who))
    return out


def faults(alarms: Iterable[Alarm], status=None):
    """The fault-localisation view (seed §7.3 e 故障定位) of active alarms: one row per fault.

    The monitor has grouped silent devices already (:meth:`DeviceMonitor.localise`): a
    ``LINK_DOWN`` alarm on ``*`` (every device silent, or the monitor's own link down) and a
    ``COLLECTOR_DOWN`` alarm per collector whose devices are all silent carry ``details.fault_id``,
    and each silenced device's ``INACTIVE``/``OFFLINE`` alarm carries that id as ``cause``.  A
    silence alarm with no cause is a fault of the device itself.  Other alarms (battery, latency,
    gaps) are not faults and are left out.

    Columns: ``fault_id``, ``scope`` (``platform`` · ``collector`` · ``device``), ``subject`` (the
    collector or device id, ``*``), ``where_zh``/``where_en``, ``devices`` (the silent devices it
    explains; from the alarm's details, else from the causes), ``n_devices``, ``since`` (the
    earliest raise, naive UTC), ``acknowledged`` (every alarm of the fault acknowledged),
    ``message``.  ``status`` (:meth:`AlarmStore.device_status` of one enterprise): the devices a
    fault may name — a platform fault concerns every enterprise, but lists only the viewer's
    devices (and its message then no other enterprise's count).
    """
    import pandas as pd

    alarms = [a for a in alarms if a.active]
    cols = ["fault_id", "scope", "subject", "where_zh", "where_en", "devices", "n_devices", "since",
            "acknowledged", "message"]
    rows: dict[str, dict] = {}
    for a in alarms:
        if a.type in ("LINK_DOWN", "COLLECTOR_DOWN"):
            fid = str(a.details.get("fault_id") or ("platform" if a.type == "LINK_DOWN" else f"collector:{a.device_id}"))
            scope = "platform" if a.type == "LINK_DOWN" else "collector"
            rows[fid] = {"fault_id": fid, "scope": scope, "subject": a.device_id, "alarms": [a],
                         "devices": set(map(str, a.details.get("devices") or [])),
                         "message": str(a.details.get("message") or "")}
    for a in alarms:
        if a.type not in ("INACTIVE", "OFFLINE"):
            continue
        fid = a.cause or f"device:{a.device_id}"
        f = rows.setdefault(fid, {"fault_id": fid, "scope": "device" if not a.cause else fid.split(":")[0],
                                  "subject": a.device_id if not a.cause else fid.split(":", 1)[-1],
                                  "alarms": [], "devices": set(), "message": ""})
        f["alarms"].append(a)
        f["devices"].add(a.device_id)
        if f["scope"] == "device" and not f["message"]:
            f["message"] = f"device {a.device_id} " + ("offline (last will)" if a.type == "OFFLINE" else "silent")
    visible = None if status is None else set(status["device_id"])
    out = []
    for f in rows.values():
        zh, en = _WHERE.get(f["scope"], ("", ""))
        devices = sorted(f["devices"] if visible is None else f["devices"] & visible)
        if visible is not None and f["scope"] == "platform":
            f["message"] = "broker/gateway link down"
        out.append({"fault_id": f["fault_id"], "scope": f["scope"], "subject": f["subject"], "where_zh": zh,
                    "where_en": en, "devices": devices, "n_devices": len(devices),
                    "since": min(a.raised_at for a in f["alarms"]),
                    "acknowledged": all(a.acknowledged for a in f["alarms"]), "message": f["message"]})
    order = {"platform": 0, "collector": 1, "device": 2}
    out.sort(key=lambda r: (order.get(r["scope"], 3), r["fault_id"]))
    return pd.DataFrame(out, columns=cols)
