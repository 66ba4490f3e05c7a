"""The OpenAPI description matches the routes and its mirror in docs/."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Route

from erelease.serve import create_app, openapi_document
from erelease.serve._openapi import openapi_yaml
from erelease.settings import Settings
from erelease.state import open_store

DOCS = Path(__file__).resolve().parents[3] / "docs" / "openapi.yaml"


def test_docs_mirror_is_current() -> None:
    assert DOCS.read_text(encoding="utf-8") == openapi_yaml(), (
        "regenerate: python -c 'from erelease.serve._openapi import write_docs; write_docs()'"
    )


def test_every_route_is_described(tmp_path: Path) -> None:
    settings = Settings(config_dir=tmp_path, stack="s", base_url="https://d.example.org/campus")
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        app = create_app(settings=settings, store=store)
    document = openapi_document(settings.base_url)
    described = {
        ("/campus" + path if path != "/healthz" else path).replace(
            "{documentId}", "{document_id:path}"
        )
        for path in document["paths"]
    }
    routes = {route.path for route in app.routes if isinstance(route, Route)}
    assert routes == described
    assert document["servers"] == [{"url": "https://d.example.org/campus"}]


def test_every_operation_documents_its_errors() -> None:
    paths = openapi_document()["paths"]
    assert {"200", "400", "401", "413", "429", "503"} <= set(
        paths["/oauth2/token"]["post"]["responses"]
    )
    listing = paths["/api/campus/transcript/eTranscripts"]["get"]["responses"]
    assert {"200", "400", "401", "503"} <= set(listing)
    document = paths["/api/campus/transcript/eTranscripts/{documentId}"]["get"]["responses"]
    assert {"200", "401", "404", "503"} <= set(document)
