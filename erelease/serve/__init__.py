"""``erelease serve``: the district's side of incoming connections (SPEC §6).

A provider holding the four shared values (eTranscripts URL, Token URL, Client
ID, Client Secret) gets a bearer token from the Token URL and pulls PESC
transcripts from the eTranscripts URL. Every answer is decided by reading the
registry, so an ``apply`` that deletes or rotates a connection cuts it off on
every replica at once; every transcript released is recorded as a disclosure.

Private modules, one concern each:

* ``_app`` — routes, health, lifespan; :func:`create_app`
* ``_token`` — the Token URL (RFC 6749 §4.4, client auth per §2.3), plain ASGI
* ``_batch`` — the tokens of one event-loop turn stored with one commit
* ``_transcripts`` — the eTranscripts URL (RFC 6750 bearer) and disclosures
* ``_index`` / ``_pesc`` — the transcripts directory and safe PESC parsing
* ``_throttle`` — sliding-window throttling of failed authentications
* ``_logging`` — structured access logs without credentials or query strings
* ``_server`` — uvicorn options; :func:`run_server`
* ``_workers`` — several serving processes on one socket (``workers=N``)
* ``_wal`` — SQLite: WAL checkpoints off the request path, writes taking turns
* ``_disclosures`` — :func:`export_disclosures` for ``erelease disclosures``
* ``_openapi`` — the OpenAPI description
"""

from __future__ import annotations

from erelease.serve._app import create_app
from erelease.serve._disclosures import export_disclosures
from erelease.serve._openapi import openapi_document
from erelease.serve._server import run_server

__all__ = ["create_app", "export_disclosures", "openapi_document", "run_server"]
