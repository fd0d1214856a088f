"""Collection devices (采集设备, seed §7.3, §7.4): the device registry and the MQTT broker's
access-control configuration generated from it.

* :mod:`workbench.devices.registry` — :class:`DeviceRegistry`: every meter, collector and platform
  user with its identifier, type, boundary node, quantities and units, firmware, versioned
  configuration, status and hashed broker credential; every change audited.
* :mod:`workbench.devices.broker` — :func:`write_broker_config`: ``mosquitto.conf``, password file
  and ACL file so that the broker (Mosquitto) itself authenticates each device and confines it to
  its own topics (seed §7.3 b 接入安全).
"""
from workbench.devices.registry import (
    DEVICE_TYPES,
    PLATFORM_ROLES,
    STATUSES,
    Device,
    DeviceError,
    DeviceExists,
    DeviceNotFound,
    DeviceRegistry,
    generate_password,
    mosquitto_hash,
    read_credentials,
    validate_device_id,
    verify_mosquitto_hash,
    write_credentials,
)

__all__ = [
    "DEVICE_TYPES",
    "PLATFORM_ROLES",
    "STATUSES",
    "Device",
    "DeviceError",
    "DeviceExists",
    "DeviceNotFound",
    "DeviceRegistry",
    "generate_password",
    "mosquitto_hash",
    "read_credentials",
    "validate_device_id",
    "verify_mosquitto_hash",
    "write_credentials",
]
