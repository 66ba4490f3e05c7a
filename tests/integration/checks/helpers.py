"""Building targets that point at the simulator."""

from __future__ import annotations

from typing import Any

from erelease.checks import IncomingTarget, OutgoingTarget
from erelease.devtools.vendorsim import SimClient, VendorSim
from erelease.model import Secret
from tests.fixtures.common import free_port


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    return free_port()


def outgoing(
    sim: VendorSim, client: SimClient, name: str = "vendor", **changes: Any
) -> OutgoingTarget:
    """An outgoing target using ``client``'s real credentials unless ``changes`` says otherwise."""
    values: dict[str, Any] = {
        "address": f"outgoing/{name}",
        "name": name,
        "token_url": sim.token_url,
        "upload_host": sim.host,
        "upload_port": sim.port,
        "upload_tls": sim.tls,
        "consumer_key": Secret(client.client_id),
        "consumer_secret": Secret(client.client_secret),
        "username": Secret(client.username or ""),
        "password": Secret(client.password or ""),
    }
    for key, value in changes.items():
        secret_field = key in ("consumer_secret", "password") and value is not None
        values[key] = Secret(value) if secret_field else value
    return OutgoingTarget(**values)


def incoming(
    sim: VendorSim, client: SimClient, name: str = "provider", **changes: Any
) -> IncomingTarget:
    values: dict[str, Any] = {
        "address": f"incoming/{name}",
        "name": name,
        "token_url": sim.token_url + "?appName=intMN",
        "etranscripts_url": sim.etranscripts_url,
        "client_id": client.client_id,
        "client_secret": Secret(client.client_secret),
    }
    values.update(changes)
    if isinstance(values["client_secret"], str):
        values["client_secret"] = Secret(values["client_secret"])
    return IncomingTarget(**values)
