"""The PR-comment poster against a local HTTP server standing in for the forge's API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from erelease.devtools.prcomment import MARKER, ForgeError, main, post_or_update

TOKEN = "ghs_forge-token-that-must-not-print"


class Forge:
    """An issue-comments API: list (paged), create, edit — and a log of calls."""

    def __init__(self) -> None:
        self.comments: list[dict[str, Any]] = [
            {"id": i, "body": f"unrelated comment {i}"} for i in range(1, 121)
        ]
        self.calls: list[tuple[str, str]] = []
        self.auth_ok = True
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                outer.calls.append((self.command, self.path))
                given = {
                    self.headers.get("Authorization"),
                    f"Bearer {self.headers.get('PRIVATE-TOKEN')}",
                }
                if f"Bearer {TOKEN}" not in given or not outer.auth_ok:
                    self._reply(401, {"message": "Bad credentials"})
                    return False
                return True

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length", "0"))
                return dict(json.loads(self.rfile.read(length)))

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                query = parse_qs(urlsplit(self.path).query)
                page = int(query.get("page", ["1"])[0])
                self._reply(200, outer.comments[(page - 1) * 100 : page * 100])

            def do_POST(self) -> None:
                if not self._authorised():
                    return
                comment = {"id": 1000 + len(outer.comments), "body": self._body()["body"]}
                outer.comments.append(comment)
                self._reply(201, comment)

            def do_PUT(self) -> None:
                self.do_PATCH()

            def do_PATCH(self) -> None:
                if not self._authorised():
                    return
                cid = int(self.path.rsplit("/", 1)[1])
                for comment in outer.comments:
                    if comment["id"] == cid:
                        comment["body"] = self._body()["body"]
                        self._reply(200, comment)
                        return
                self._reply(404, {"message": "Not Found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def ours(self) -> list[dict[str, Any]]:
        return [c for c in self.comments if MARKER in c["body"]]


@pytest.fixture
def forge() -> Iterator[Forge]:
    forge = Forge()
    thread = threading.Thread(target=forge.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield forge
    finally:
        forge.server.shutdown()
        forge.server.server_close()


def test_creates_once_then_updates_the_same_comment(forge: Forge) -> None:
    kw = {"api": forge.url, "repo": "district/transcripts", "pr": 7, "token": TOKEN}
    assert post_or_update(body="plan one", **kw) == "created"
    assert post_or_update(body="plan two", **kw) == "updated"
    [comment] = forge.ours()
    assert comment["body"].endswith("plan two")
    # The marker sat on page 2: the poster must page through the comments.
    assert (
        "GET",
        "/repos/district/transcripts/issues/7/comments?per_page=100&page=2",
    ) in forge.calls


def test_gitlab_merge_request_notes_are_created_then_edited(forge: Forge) -> None:
    kw = {"api": forge.url, "repo": "district/transcripts", "pr": 9, "token": TOKEN}
    assert post_or_update(body="plan one", forge="gitlab", **kw) == "created"
    assert post_or_update(body="plan two", forge="gitlab", **kw) == "updated"
    [note] = forge.ours()
    assert note["body"].endswith("plan two")
    notes = "/projects/district%2Ftranscripts/merge_requests/9/notes"
    assert ("GET", f"{notes}?per_page=100&page=2") in forge.calls
    assert ("PUT", f"{notes}/{note['id']}") in forge.calls


def test_command_line_never_prints_the_token(
    forge: Forge,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = tmp_path / "plan.md"
    body.write_text("### erelease plan\n", encoding="utf-8")
    monkeypatch.delenv("GITLAB_CI", raising=False)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    args = ["--api", forge.url, "--repo", "d/t", "--pr", "3", str(body)]
    assert main(args) == 0
    forge.auth_ok = False
    assert main(args) == 1
    out = capsys.readouterr()
    assert "HTTP 401" in out.err
    assert TOKEN not in out.out + out.err


def test_inside_a_gitlab_job_everything_comes_from_the_environment(
    forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = tmp_path / "plan.md"
    body.write_text("### erelease plan\n", encoding="utf-8")
    for name, value in {
        "GITLAB_CI": "true",
        "CI_PROJECT_ID": "4242",
        "CI_MERGE_REQUEST_IID": "17",
        "CI_API_V4_URL": forge.url,
        "GITLAB_TOKEN": TOKEN,
    }.items():
        monkeypatch.setenv(name, value)
    assert main([str(body)]) == 0
    assert ("POST", "/projects/4242/merge_requests/17/notes") in forge.calls


def test_unreachable_forge_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ForgeError, match="cannot reach"):
        post_or_update(api="http://127.0.0.1:9", repo="d/t", pr=1, body="x", token=TOKEN)


def test_missing_token_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GITLAB_CI", raising=False)
    body = tmp_path / "plan.md"
    body.write_text("x", encoding="utf-8")
    assert main(["--repo", "d/t", "--pr", "1", str(body)]) == 1


def test_missing_pull_request_number_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GITLAB_CI", "GITHUB_REF", "GITHUB_REPOSITORY"):
        monkeypatch.delenv(name, raising=False)
    body = tmp_path / "plan.md"
    body.write_text("x", encoding="utf-8")
    assert main(["--repo", "d/t", str(body)]) == 64
