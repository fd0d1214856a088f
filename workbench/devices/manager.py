"""Remote management of collection devices (seed §7.4): configuration updates with acknowledgement,
firmware/system-version tracking, remote commands, isolation (接入隔离) and restoration.

:class:`DeviceManager` connects to the broker as a platform user with the ``manager`` role (write
``config``/``cmd``, read ``status``/``cmd/ack``):

* :meth:`~DeviceManager.push_config` stores the new configuration in the registry (its version
  increments) and publishes it RETAINED on ``<root>/<device>/config`` (QoS 1), so a device that is
  offline gets it when it reconnects; the device answers on ``cmd/ack`` with id ``config:<version>``
  and the acknowledgement is written to the registry's audit log.
* :meth:`~DeviceManager.command` sends ``restart`` / ``set_interval`` / ``isolate`` on ``cmd``;
  answers are collected from ``cmd/ack`` (and audited).
* Status heartbeats carry the firmware version; a change is written to the registry (audited as
  reported by the device), so the registry always shows what runs in the field.
* :meth:`~DeviceManager.isolate` marks the device isolated and applies the registry to the broker
  (:func:`workbench.devices.broker.apply_broker_config`: its password line removed, the broker's
  access plugin disables it — the broker disconnects it at once and refuses it afterwards) — and the
  gateway quarantines anything still attributed to it.  :meth:`~DeviceManager.restore` undoes that
  with the same credentials.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Self

from workbench.devices import topics

__all__ = ["DeviceManager"]

log = logging.getLogger(__name__)


class DeviceManager:
    """See the module doc.  ``broker_dir``/``broker_options``: where and how
    :func:`workbench.devices.broker.write_broker_config` writes the broker's files; ``reload``: a
    callable that makes the running broker re-read its password file and CRL (e.g.
    ``lambda: reload_broker(pid)``); ``admin``: a :class:`workbench.devices.access.BrokerAdmin`
    that applies the access rules to the running broker (without it a connected device keeps its
    connection until the broker restarts)."""

    def __init__(self, registry, host: str, port: int, *, username: str, password: str, root: str = "wb",
                 broker_dir=None, broker_options: Mapping | None = None, reload: Callable[[], None] | None = None,
                 admin=None, who: str = "manager"):
        import paho.mqtt.client as mqtt

        self.registry, self.root, self.who = registry, root, who
        self.broker_dir, self.broker_options, self.reload = broker_dir, dict(broker_options or {}), reload
        self.admin = admin
        self.acks: dict[tuple[str, str], topics.CommandAck] = {}
        self.status: dict[str, dict] = {}
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        c = self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5)
        c.username_pw_set(username, password)
        c.on_connect = lambda cl, u, f, rc, p: (None if rc.is_failure else cl.subscribe(
            [(topics.topic_filter(root, "cmd_ack"), 1), (topics.topic_filter(root, "status"), 1)]))
        c.on_subscribe = lambda cl, u, mid, rcs, p: self._subscribed.set()
        c.on_message = self._on_message
        c.connect(host, port, keepalive=30)
        c.loop_start()
        if not self._subscribed.wait(10):
            raise ConnectionError(f"device manager could not connect/subscribe to {host}:{port} as {username}")

    # ------------------------------------------------------------------ incoming
    def _on_message(self, client, userdata, msg):
        parsed = topics.parse_topic(self.root, msg.topic)
        if parsed is None:
            return
        device, kind = parsed
        try:
            if kind == "cmd_ack":
                ack = topics.parse_cmd_ack(msg.payload)
                self._audit(device, "config_ack" if ack.id.startswith("config:") else "cmd_ack",
                            {"id": ack.id, "ok": ack.ok, "detail": ack.detail}, who=f"device:{device}")
                with self._cond:                              # after the audit: a waiter sees both
                    self.acks[(device, ack.id)] = ack
                    self._cond.notify_all()
            elif kind == "status":
                st = topics.parse_status(msg.payload)
                self.status[device] = st
                fw = st.get("firmware")
                dev = self.registry.find(device)
                if fw and dev is not None and dev.firmware != fw:
                    self.registry.set_firmware(device, str(fw), who=f"device:{device} (status)")
        except Exception as exc:  # noqa: BLE001 - a bad uplink must not stop the manager
            log.warning("device manager: %s from %s ignored: %s", kind, device, exc)

    def _audit(self, device: str, what: str, details: dict, *, who: str | None = None) -> None:
        try:
            self.registry.record(device, what, details, who=who or self.who)
        except Exception as exc:  # noqa: BLE001 - unknown device: logged, not fatal
            log.warning("device manager: cannot record %s for %s: %s", what, device, exc)

    def wait_ack(self, device: str, ack_id: str, timeout: float = 10.0) -> topics.CommandAck | None:
        """The acknowledgement ``ack_id`` of ``device`` (``None`` if none came within ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (device, ack_id) not in self.acks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self.acks[(device, ack_id)]

    # ------------------------------------------------------------------ downlink
    def _publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        if not info.is_published():
            raise ConnectionError(f"broker did not accept {topic}")

    def push_config(self, device_id: str, config: Mapping, *, who: str | None = None) -> int:
        """Store and publish (retained) a new configuration; returns its version."""
        version = self.registry.set_config(device_id, config, who=who or self.who)
        self._publish(topics.config_topic(self.root, device_id), topics.config_payload(version, config),
                      retain=True)
        return version

    def wait_config_ack(self, device_id: str, version: int, timeout: float = 10.0):
        return self.wait_ack(device_id, topics.config_ack_id(version), timeout)

    def command(self, device_id: str, cmd: str, args: Mapping | None = None, *, who: str | None = None) -> str:
        """Send a command; returns its id (see :meth:`wait_ack`)."""
        self.registry.get(device_id)                          # unknown devices: DeviceNotFound
        cmd_id = uuid.uuid4().hex[:12]
        payload = topics.cmd_payload(cmd_id, cmd, args)          # validates the command
        self._audit(device_id, "cmd", {"id": cmd_id, "cmd": cmd, "args": json.loads(json.dumps(args or {}))},
                    who=who)
        self._publish(topics.cmd_topic(self.root, device_id), payload)
        return cmd_id

    # ------------------------------------------------------------------ isolation
    def _apply_broker(self) -> None:
        from workbench.devices.broker import apply_broker_config

        if self.broker_dir is None or (self.reload is None and self.admin is None):
            raise RuntimeError("isolation needs broker_dir and reload and/or admin (the broker's files and how to "
                               "apply them to the running broker)")
        apply_broker_config(self.registry, self.broker_dir, admin=self.admin, root=self.root, **self.broker_options)
        if self.reload is not None:
            self.reload()

    def isolate(self, device_id: str, *, who: str | None = None, reason: str = "") -> None:
        """Revoke the device's access: registry status ``isolated`` → broker files without its
        password, access rules with it disabled → applied to the running broker (it is
        disconnected now and refused from then on)."""
        self.registry.set_status(device_id, "isolated", who=who or self.who)
        self._audit(device_id, "isolate", {"reason": reason}, who=who)
        self._apply_broker()

    def restore(self, device_id: str, *, who: str | None = None) -> None:
        """Give an isolated device its access back (same credentials)."""
        self.registry.set_status(device_id, "active", who=who or self.who)
        self._apply_broker()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
