"""The OpenAPI 3.1 description of what ``erelease serve`` answers.

Written by hand as a dict so it says exactly what the handlers do, served at
``<basePath>/openapi.json`` with the district's own base URL, and mirrored in
``docs/openapi.yaml`` (a test keeps the two equal; regenerate with
``python -c "from erelease.serve._openapi import write_docs; write_docs()"``).
"""

from __future__ import annotations

import copy
from typing import Any

from erelease.settings import DEFAULT_BASE_URL

__all__ = ["openapi_document", "openapi_yaml", "write_docs"]

_OAUTH_ERROR = {
    "type": "object",
    "description": "RFC 6749 §5.2 / RFC 6750 §3 error response.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "string",
            "examples": ["invalid_request", "invalid_client", "unsupported_grant_type"],
        },
        "error_description": {"type": "string"},
    },
}


#: RFC 6750 §3: a 400 carries a challenge only when the token itself was malformed.
_MAYBE_CHALLENGE = {
    "description": "Present when the bearer token is malformed (RFC 6750 §3.1 invalid_request).",
    "schema": {"type": "string"},
}


def _err(description: str, *headers: str, optional: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    described: dict[str, Any] = {h: {"$ref": f"#/components/headers/{h}"} for h in headers}
    described.update(copy.deepcopy(optional or {}))  # shared objects would be YAML anchors
    if described:
        response["headers"] = described
    return response


_TOKEN_PATH: dict[str, Any] = {
    "post": {
        "operationId": "issueToken",
        "summary": "Issue a bearer token (RFC 6749 §4.4 client credentials)",
        "description": (
            "Client authentication by HTTP Basic (RFC 6749 §2.3.1: id and secret "
            "form-urlencoded, then Basic) or by client_id/client_secret in the body; "
            "never both. Repeated failures from one client or address are throttled."
        ),
        "security": [{"basic": []}, {}],
        "parameters": [
            {
                "name": "appName",
                "in": "query",
                "required": True,
                "description": "The application name in the Token URL the district shared.",
                "schema": {"type": "string"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                            "scope": {"type": "string", "description": "Ignored."},
                        },
                    }
                }
            },
        },
        "responses": {
            "200": {
                "description": "A token (Cache-Control: no-store).",
                "headers": {"Cache-Control": {"$ref": "#/components/headers/Cache-Control"}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Token"}}},
            },
            "400": _err("invalid_request or unsupported_grant_type."),
            "401": _err("invalid_client.", "WWW-Authenticate"),
            "413": _err("The body is larger than 16 KiB (invalid_request)."),
            "429": _err("Too many failures from this client or address.", "Retry-After"),
            "503": _err("The registry cannot be reached.", "Retry-After"),
        },
    }
}

_LIST_PATH: dict[str, Any] = {
    "get": {
        "operationId": "listTranscripts",
        "summary": "List the PESC transcripts available",
        "security": [{"bearer": []}],
        "parameters": [
            {
                "name": "since",
                "in": "query",
                "description": "Only transcripts created at or after this ISO 8601 date "
                "(2025-03-01, midnight UTC) or date-time (a time without an offset is UTC).",
                "schema": {
                    "anyOf": [
                        {"type": "string", "format": "date-time"},
                        {"type": "string", "format": "date"},
                    ]
                },
            },
            {
                "name": "cursor",
                "in": "query",
                "description": "The `next` value of the previous page.",
                "schema": {"type": "string"},
            },
            {
                "name": "limit",
                "in": "query",
                "description": "Page size; larger values are reduced to 500.",
                "schema": {"type": "integer", "minimum": 1, "default": 50, "maximum": 500},
            },
        ],
        "responses": {
            "200": {
                "description": "One page, ordered by createdDateTime then documentId.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}},
            },
            "400": _err(
                "A bad since, limit or cursor, or a malformed token.",
                optional={"WWW-Authenticate": _MAYBE_CHALLENGE},
            ),
            "401": _err("No token, or an invalid, expired or revoked one.", "WWW-Authenticate"),
            "503": _err("The registry cannot be reached.", "Retry-After"),
        },
    }
}

_DOCUMENT_PATH: dict[str, Any] = {
    "get": {
        "operationId": "getTranscript",
        "summary": "Download one PESC transcript; the release is recorded as a disclosure",
        "security": [{"bearer": []}],
        "parameters": [
            {
                "name": "documentId",
                "in": "path",
                "required": True,
                "description": "TransmissionData/DocumentID of the transcript.",
                "schema": {"type": "string"},
            }
        ],
        "responses": {
            "200": {
                "description": "The PESC High School Transcript XML.",
                "content": {"application/xml": {"schema": {"type": "string"}}},
            },
            "400": _err("A malformed token.", optional={"WWW-Authenticate": _MAYBE_CHALLENGE}),
            "401": _err("No token, or an invalid, expired or revoked one.", "WWW-Authenticate"),
            "404": _err("No transcript has that documentId."),
            "503": _err("The registry cannot be reached.", "Retry-After"),
        },
    }
}

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "erelease serve: incoming eTranscript connections",
        "version": "1",
        "description": (
            "The district side of an incoming connection. A provider needs only the "
            "four shared values: the eTranscripts URL, the Token URL, a Client ID and "
            "a Client Secret."
        ),
    },
    "servers": [{"url": DEFAULT_BASE_URL}],
    "paths": {
        "/oauth2/token": _TOKEN_PATH,
        "/api/campus/transcript/eTranscripts": _LIST_PATH,
        "/api/campus/transcript/eTranscripts/{documentId}": _DOCUMENT_PATH,
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This description",
                "responses": {"200": {"description": "OpenAPI 3.1 JSON."}},
            }
        },
        "/healthz": {
            "servers": [{"url": "/", "description": "The server root, outside basePath."}],
            "get": {
                "operationId": "healthz",
                "summary": "Liveness and registry readability",
                "responses": {
                    "200": {"description": "The registry is readable."},
                    "503": {"description": "The registry cannot be read."},
                },
            },
        },
    },
    "components": {
        "securitySchemes": {
            "basic": {"type": "http", "scheme": "basic"},
            "bearer": {"type": "http", "scheme": "bearer"},
        },
        "headers": {
            "WWW-Authenticate": {
                "description": "The challenge (RFC 6749 §5.2 Basic, RFC 6750 §3 Bearer).",
                "required": True,
                "schema": {"type": "string"},
            },
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "required": True,
                "schema": {"type": "integer"},
            },
            "Cache-Control": {
                "description": "RFC 6749 §5.1: tokens are never cached.",
                "required": True,
                "schema": {"type": "string", "const": "no-store"},
            },
        },
        "schemas": {
            "Error": _OAUTH_ERROR,
            "Token": {
                "type": "object",
                "required": ["access_token", "token_type", "expires_in"],
                "properties": {
                    "access_token": {"type": "string"},
                    "token_type": {"type": "string", "const": "Bearer"},
                    "expires_in": {"type": "integer"},
                },
            },
            "Page": {
                "type": "object",
                "required": ["items", "next"],
                "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
                    "next": {"type": ["string", "null"]},
                },
            },
            "Item": {
                "type": "object",
                "required": ["documentId", "createdDateTime", "href"],
                "properties": {
                    "documentId": {"type": "string"},
                    "createdDateTime": {"type": "string", "format": "date-time"},
                    "href": {"type": "string", "format": "uri"},
                },
            },
        },
    },
}


def openapi_document(base_url: str = DEFAULT_BASE_URL) -> dict[str, Any]:
    """The description with ``servers`` set to the district's ``incoming.baseUrl``."""
    document = copy.deepcopy(_DOCUMENT)
    document["servers"] = [{"url": base_url.rstrip("/")}]
    return document


def openapi_yaml() -> str:
    """``docs/openapi.yaml``: the description for the default base URL."""
    import yaml

    header = "# Generated from erelease/serve/_openapi.py by write_docs(); do not edit by hand.\n"
    return header + yaml.safe_dump(openapi_document(), sort_keys=False, allow_unicode=True)


def write_docs(path: str = "docs/openapi.yaml") -> None:
    """Regenerate the mirror in ``docs/`` (run from the repository root)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(openapi_yaml())
