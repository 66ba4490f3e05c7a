"""What a connectivity test is run against: plain values with secrets already resolved.

The engine builds these after reading Vault, so this package never needs to know
about references, the state store or the config loader (SPEC §5.5; the layers in
``pyproject.toml``). Secret fields hold :class:`~erelease.model.Secret`, whose
``repr`` is ``***``: a target can be logged or shown in a traceback without leaking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from erelease.model import Kind, Secret

__all__ = ["GRANT_TYPES", "IncomingTarget", "OutgoingTarget", "Target", "Unavailable"]

#: RFC 6749 §4.3 (resource owner password) and §4.4 (client credentials).
GRANT_TYPES = ("password", "client_credentials")
#: RFC 6749 §2.3.1: HTTP Basic (RECOMMENDED) or the request body.
CLIENT_AUTH = ("basic", "body")


@dataclass(frozen=True)
class OutgoingTarget:
    """A vendor connection: its token endpoint and its upload server.

    ``token_url`` is ``authServer + authPath``; ``upload_tls`` is true when
    ``uploadServer`` is ``https://``. ``username``/``password`` may be ``None``
    only with ``grant_type="client_credentials"``.
    """

    address: str
    name: str
    token_url: str
    upload_host: str
    upload_port: int
    upload_tls: bool
    consumer_key: Secret
    consumer_secret: Secret
    username: Secret | None
    password: Secret | None
    grant_type: str = "password"
    client_auth: str = "basic"

    def __post_init__(self) -> None:
        if self.grant_type not in GRANT_TYPES:
            raise ValueError(f"grant_type must be one of {', '.join(GRANT_TYPES)}")
        if self.client_auth not in CLIENT_AUTH:
            raise ValueError(f"client_auth must be one of {', '.join(CLIENT_AUTH)}")


@dataclass(frozen=True)
class IncomingTarget:
    """An incoming connection as a provider sees it: our Token URL and eTranscripts URL."""

    address: str
    name: str
    token_url: str
    etranscripts_url: str
    client_id: str
    client_secret: Secret


@dataclass(frozen=True)
class Unavailable:
    """A connection that cannot be tested, e.g. because a secret could not be read.

    It becomes a ``failed`` result with reason ``secret_unavailable`` and
    ``message`` as given, without any network traffic. The message is shown to
    the user as is, so it must not hold a secret value.
    """

    address: str
    kind: Kind
    name: str
    message: str


Target: TypeAlias = OutgoingTarget | IncomingTarget | Unavailable
