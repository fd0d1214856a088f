"""Who may do what on the broker (seed §7.3 b 接入安全, §7.4 b 接入隔离): every registry entry's
access rules as Mosquitto's dynamic-security plugin enforces them, and applying them to a running
broker.

Why the plugin: Mosquitto 2.0's ACL file is consulted when a message is published or delivered,
never at SUBSCRIBE (measured on 2.0.11: a device was granted ``#``, ``$SYS/#`` and
``$share/<the gateways' group>/wb/+/telemetry``).  With the shared subscription the broker handed
the device its share of everyone's telemetry, the ACL then blocked delivery, and those
acknowledged readings were gone.  The dynamic-security plugin checks subscriptions: a device may
subscribe to its own ``config`` and ``cmd`` topics and nothing else (SUBACK 0x87 "Not authorized"),
may publish to its own ``telemetry``, ``status`` and ``cmd/ack`` topics only (PUBACK 0x87), and
receives only its own downlink.

Duties are split so that the registry stays the only home of credentials:

* authentication — the password file (``$7$`` hashes from the registry, re-read on ``SIGHUP``) or a
  client certificate (``CN`` = user, on the TLS listener).  The plugin's clients carry no password,
  so it defers password checks to the file; an isolated device is also ``disabled`` in the plugin,
  which refuses it whatever the file says.
* authorisation — the plugin only: one role per device (``device:<id>``, its literal topics;
  Mosquitto 2.0.11's plugin has no ``%u`` substitution), one role per platform role
  (``platform:gateway`` …, topic patterns), default access denied.  A user the plugin does not know
  is denied everything (there is no ACL file to fall back on).
* no acknowledged message for nobody — a device is enabled only once a gateway's persistent
  session subscribes to its telemetry (:func:`waiting_devices`; gateways record their
  subscriptions in the registry): until then the broker refuses it, so the device keeps its data
  instead of the broker acknowledging it and dropping it for want of a subscriber.
* a running broker — the plugin reads its JSON document only at start; :class:`BrokerAdmin` applies
  the registry's rules through the plugin's control topic ``$CONTROL/dynamic-security/v1`` (as a
  platform user with the ``admin`` role): it creates and changes roles and clients, disables
  isolated devices (the broker disconnects them at once) and deletes retired ones.  The plugin then
  saves its document itself.

Rule tuples are ``(acltype, topic)`` with the plugin's ``acltype`` names (``publishClientSend``,
``publishClientReceive``, ``subscribeLiteral``, ``subscribePattern``).
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable

from workbench.devices.registry import PLATFORM_ROLES, DeviceError, DeviceRegistry

__all__ = [
    "CONTROL_TOPIC",
    "DEFAULT_ACL_ACCESS",
    "BrokerAdmin",
    "BrokerAdminError",
    "access_document",
    "device_rules",
    "platform_rules",
    "role_name",
    "waiting_devices",
]

log = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"

#: what nobody may do unless a role grants it (unsubscribing harms nobody)
DEFAULT_ACL_ACCESS = {"publishClientSend": False, "publishClientReceive": False, "subscribe": False,
                      "unsubscribe": True}

_SEND, _RECEIVE = "publishClientSend", "publishClientReceive"


def device_rules(root: str, device_id: str) -> list[tuple[str, str]]:
    """A device's own topics (:func:`workbench.devices.topics.device_topics`): it sends
    telemetry, status and command acknowledgements; it subscribes to (exactly) its configuration
    and command topics and receives only those."""
    from workbench.devices.topics import device_topics

    rules = []
    for access, topic in device_topics(root, device_id).values():
        rules += [(_SEND, topic)] if access == "write" else [("subscribeLiteral", topic), (_RECEIVE, topic)]
    return rules


def _read(pattern: str) -> list[tuple[str, str]]:
    return [("subscribePattern", pattern), (_RECEIVE, pattern)]


def platform_rules(root: str, role: str) -> list[tuple[str, str]]:
    """A platform role's rules: ``gateway`` reads every device's telemetry, status and command
    acknowledgements (plain subscriptions; no ``$share/…`` — see :mod:`workbench.devices.gateway`);
    ``manager`` also writes configurations and commands; ``admin`` speaks to the plugin's control
    topic and nothing else."""
    if role == "gateway":
        return [r for kind in ("telemetry", "status", "cmd/ack") for r in _read(f"{root}/+/{kind}")]
    if role == "manager":
        return [(_SEND, f"{root}/+/config"), (_SEND, f"{root}/+/cmd"),
                *_read(f"{root}/+/status"), *_read(f"{root}/+/cmd/ack")]
    if role == "admin":
        return [(_SEND, CONTROL_TOPIC), ("subscribeLiteral", RESPONSE_TOPIC), (_RECEIVE, RESPONSE_TOPIC)]
    raise DeviceError(f"unknown platform role {role!r} (one of {list(PLATFORM_ROLES)})")


def role_name(device) -> str:
    """``platform:<role>`` for platform users, ``device:<id>`` for devices."""
    return f"platform:{device.type}" if device.type in PLATFORM_ROLES else f"device:{device.device_id}"


def waiting_devices(registry: DeviceRegistry, devices=None) -> list[str]:
    """Active devices no gateway's session subscribes to yet (see
    :meth:`~workbench.devices.registry.DeviceRegistry.coverage`): the broker would acknowledge
    their telemetry and hand it to nobody, so they stay disabled until a gateway subscribes.
    Empty while no gateway has ever subscribed (a new deployment: start the gateways first)."""
    coverage = registry.coverage()
    if coverage is None:
        return []
    devices = registry.list(status="active") if devices is None else devices
    return sorted(d.device_id for d in devices if d.status == "active" and d.type not in PLATFORM_ROLES
                  and not (coverage.get(d.device_id) or coverage.get("*")))


def access_document(registry: DeviceRegistry, *, root: str = "wb",
                    platform_users: Iterable[str] | None = None) -> dict:
    """The plugin's JSON document (``dynamic-security.json``) for the registry: every device with a
    credential — active ones enabled, isolated ones and those no gateway subscribes to yet
    (:func:`waiting_devices`) ``disabled`` — and the active platform users (only those named in
    ``platform_users`` when given), each with its role; retired devices are left out (unknown to
    the plugin = denied everything).  No passwords: see the module doc."""
    from workbench.devices.topics import validate_root

    validate_root(root)
    wanted = None if platform_users is None else set(platform_users)
    everything = sorted(registry.list(), key=lambda d: d.device_id)
    waiting = set(waiting_devices(registry, everything))
    clients, roles = [], {}
    for d in everything:
        if d.type in PLATFORM_ROLES:
            if d.status != "active" or (wanted is not None and d.device_id not in wanted):
                continue
            rules = platform_rules(root, d.type)
        else:
            if d.status == "retired":
                continue
            rules = device_rules(root, d.device_id)
        name = role_name(d)
        roles[name] = rules
        why = d.status if d.status != "active" else ("waiting for a gateway subscription"
                                                     if d.device_id in waiting else None)
        clients.append({"username": d.device_id, "textname": d.type, "roles": [{"rolename": name}],
                        **({"disabled": True, "textdescription": why} if why else {})})
    return {"defaultACLAccess": dict(DEFAULT_ACL_ACCESS), "clients": clients, "groups": [],
            "roles": [{"rolename": name, "acls": [{"acltype": t, "topic": topic, "priority": 0, "allow": True}
                                                  for t, topic in rules]}
                      for name, rules in sorted(roles.items())]}


# --------------------------------------------------------------------------- a running broker


class BrokerAdminError(DeviceError):
    """The broker's control topic did not answer, or refused a command."""


def _state_of(document: dict) -> tuple[dict, dict]:
    """({role: {(acltype, topic, allow)}}, {user: (frozenset(roles), disabled)}) of a document or
    of the plugin's listings (same shapes)."""
    roles = {r["rolename"]: {(a["acltype"], a["topic"], bool(a.get("allow", True))) for a in r.get("acls", [])}
             for r in document.get("roles", [])}
    clients = {c["username"]: (frozenset(r["rolename"] for r in c.get("roles", [])), bool(c.get("disabled", False)))
               for c in document.get("clients", [])}
    return roles, clients


def _ours(role: str) -> bool:
    return role.startswith(("device:", "platform:"))


class BrokerAdmin:
    """A connection to the broker as a platform user with the ``admin`` role, to read and change
    the dynamic-security plugin's clients and roles (see the module doc).  Use as a context
    manager, or call :meth:`close`.  ``tls``: a :class:`~workbench.devices.pki.ClientTLS`."""

    def __init__(self, host: str, port: int, *, username: str, password: str | None = None, tls=None,
                 timeout: float = 10.0):
        import paho.mqtt.client as mqtt

        self.timeout = timeout
        self._answers: dict[str, list] = {}
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._refused = None
        # the broker uses the user name as the client id: one admin connection at a time
        c = self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5)
        c.username_pw_set(username, password)
        if tls is not None:
            tls.apply(c)
        c.on_connect = self._on_connect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        try:
            c.connect(host, port, keepalive=30)
        except OSError as exc:
            raise BrokerAdminError(f"cannot reach the broker at {host}:{port}: {exc}") from None
        c.loop_start()
        if not self._ready.wait(timeout) or self._refused:
            self.close()
            raise BrokerAdminError(f"broker admin {username!r} could not connect and subscribe to {RESPONSE_TOPIC} "
                                   f"at {host}:{port} ({self._refused or 'no answer'}); is it a platform user with "
                                   "the admin role, and does the broker load the dynamic-security plugin?")

    def _on_connect(self, client, userdata, flags, rc, props):
        if rc.is_failure:
            self._refused = f"connection refused: {rc}"
            self._ready.set()
        else:
            client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(self, client, userdata, mid, rcs, props):
        if any(rc.is_failure for rc in rcs):
            self._refused = f"subscription refused: {rcs}"
        self._ready.set()

    def _on_message(self, client, userdata, msg):
        try:
            responses = json.loads(msg.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            log.warning("broker admin: unreadable control response %r", msg.payload[:200])
            return
        with self._cond:
            for r in responses:
                if isinstance(r, dict) and "correlationData" in r:
                    self._answers[str(r["correlationData"])] = r
            self._cond.notify_all()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def command(self, *commands: dict, check: bool = True) -> list[dict]:
        """Send commands in one control message; their responses in order.  ``check``: raise
        :class:`BrokerAdminError` naming the first command the plugin refused."""
        if not commands:
            return []
        ids = [uuid.uuid4().hex for _ in commands]
        body = {"commands": [dict(c, correlationData=i) for c, i in zip(commands, ids, strict=True)]}
        info = self.client.publish(CONTROL_TOPIC, json.dumps(body), qos=1)
        info.wait_for_publish(self.timeout)
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while not all(i in self._answers for i in ids):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrokerAdminError(f"no answer from the broker's control topic within {self.timeout:g} s "
                                           f"({commands[0]['command']} …)")
                self._cond.wait(left)
            out = [self._answers.pop(i) for i in ids]
        if check:
            for c, r in zip(commands, out, strict=True):
                if r.get("error"):
                    raise BrokerAdminError(f"broker refused {c['command']} "
                                           f"{c.get('username') or c.get('rolename') or ''}: {r['error']}")
        return out

    def state(self) -> dict:
        """The plugin's clients and roles as a document (the shape of :func:`access_document`)."""
        roles, clients = self.command({"command": "listRoles", "verbose": True, "count": -1},
                                      {"command": "listClients", "verbose": True, "count": -1})
        return {"roles": roles["data"]["roles"], "clients": clients["data"]["clients"]}

    def sync(self, document: dict) -> list[str]:
        """Make the running broker's clients and roles those of ``document`` (from
        :func:`access_document`); returns what was changed, one line each.  Roles and clients the
        document does not name are deleted (a deleted or disabled client is disconnected by the
        broker at once); roles not made by the workbench are left alone."""
        want_roles, want_clients = _state_of(document)
        have_roles, have_clients = _state_of(self.state())
        cmds, changes = [], []
        for name, acls in want_roles.items():
            have = have_roles.get(name)
            if have is None:
                cmds.append({"command": "createRole", "rolename": name,
                             "acls": [{"acltype": t, "topic": topic, "allow": a, "priority": 0} for t, topic, a in acls]})
                changes.append(f"role {name} created")
                continue
            for t, topic, a in sorted(have - acls):
                cmds.append({"command": "removeRoleACL", "rolename": name, "acltype": t, "topic": topic})
            for t, topic, a in sorted(acls - have):
                cmds.append({"command": "addRoleACL", "rolename": name, "acltype": t, "topic": topic, "allow": a,
                             "priority": 0})
            if have != acls:
                changes.append(f"role {name} changed")
        for user, (roles, disabled) in want_clients.items():
            have = have_clients.get(user)
            if have is None:
                cmds.append({"command": "createClient", "username": user,
                             "roles": [{"rolename": r} for r in sorted(roles)]})
                changes.append(f"client {user} created")
                have = (roles, False)
            else:
                for r in sorted(have[0] - roles):
                    cmds.append({"command": "removeClientRole", "username": user, "rolename": r})
                for r in sorted(roles - have[0]):
                    cmds.append({"command": "addClientRole", "username": user, "rolename": r})
                if have[0] != roles:
                    changes.append(f"client {user} roles {sorted(roles)}")
            if have[1] != disabled:
                cmds.append({"command": "disableClient" if disabled else "enableClient", "username": user})
                changes.append(f"client {user} {'disabled' if disabled else 'enabled'}")
        for user in sorted(set(have_clients) - set(want_clients)):
            cmds.append({"command": "deleteClient", "username": user})
            changes.append(f"client {user} deleted")
        for name in sorted(set(have_roles) - set(want_roles)):
            if _ours(name):
                cmds.append({"command": "deleteRole", "rolename": name})
                changes.append(f"role {name} deleted")
        for k in range(0, len(cmds), 500):          # one control message per 500 commands
            self.command(*cmds[k:k + 500])
        if changes:
            log.info("broker access rules applied: %s", "; ".join(changes[:20]) + (" …" if len(changes) > 20 else ""))
        return changes
