"""From a service's configuration in the target state to the engine's create options.

Pure. The target state carries a service's configuration the way the iotistic agent writes it
(``ports``, ``environment``, ``volumes``, ``restart``, ``labels``, ``networkMode``, ``command``,
...); the Docker Engine API wants it another way. Every new container of a service is created
from the same configuration, so an update changes the image and nothing else.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from fleetwave.agent.runtime import DEVICE, RuntimeFailure, ServiceSpec

RESTART = {"always", "unless-stopped", "on-failure", "no"}


def container_name(spec: ServiceSpec, device_uuid: str) -> str:
    """Unique per device and service, so agents sharing one engine never collide."""
    raw = f"{spec.service_name}_{spec.app_id}_{device_uuid}"
    name = re.sub(r"[^a-zA-Z0-9_.-]", "-", raw)
    return name if name[0].isalnum() else f"fw{name}"  # engines want a letter or digit first


def create_options(spec: ServiceSpec, device_uuid: str) -> dict[str, Any]:
    config = spec.config
    options: dict[str, Any] = {
        "name": container_name(spec, device_uuid),
        "labels": spec.labels | {DEVICE: device_uuid},
        "detach": True,
    }
    environment = _environment(config.get("environment"))
    if environment:
        options["environment"] = environment
    network = config.get("networkMode") or config.get("network_mode")
    if network:
        options["network_mode"] = str(network)
    ports = _ports(config.get("ports"))
    if ports and network != "host":
        options["ports"] = ports
    volumes = [str(v) for v in config.get("volumes") or []]
    if volumes:
        options["volumes"] = volumes
    restart = str(config.get("restart") or "")
    if restart in RESTART and restart != "no":
        options["restart_policy"] = {"Name": restart}
    for ours, theirs in (
        ("command", "command"),
        ("entrypoint", "entrypoint"),
        ("user", "user"),
        ("workingDir", "working_dir"),
        ("working_dir", "working_dir"),
        ("hostname", "hostname"),
    ):
        value = config.get(ours)
        if value:
            options[theirs] = (
                shlex.split(value)
                if isinstance(value, str)
                and ours
                in (
                    "command",
                    "entrypoint",
                )
                else value
            )
    return options


def _environment(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [f"{k}={v}" for k, v in value.items()]
    if isinstance(value, list):
        return [str(item) for item in value]
    return []


def _ports(value: Any) -> dict[str, Any]:
    """``["8080:80", "127.0.0.1:53:53/udp", "9000", "8000-8001:8000-8001"]`` → the SDK's
    ``{"80/tcp": 8080, ...}``. A mapping the agent cannot read is a start failure, reported."""
    ports: dict[str, Any] = {}
    for item in value or []:
        mapping, _, protocol = str(item).partition("/")
        parts = mapping.split(":")
        try:
            inner = _port_range(parts[-1])
            outer = _port_range(parts[-2]) if len(parts) >= 2 else [None] * len(inner)
        except ValueError:
            raise RuntimeFailure("start_failed", f"cannot read the port mapping {item!r}") from None
        if len(outer) != len(inner):
            raise RuntimeFailure("start_failed", f"port ranges of unequal length in {item!r}")
        host = ":".join(parts[:-2])
        for port, published in zip(inner, outer, strict=True):
            key = f"{port}/{protocol or 'tcp'}"
            ports[key] = (host, published) if host and published else published
    return ports


def _port_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    low, high = int(first), int(last or first)
    if not 0 < low <= high <= 65535:
        raise ValueError(text)
    return list(range(low, high + 1))
