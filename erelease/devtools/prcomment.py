"""Post a plan as ONE pull-request (or merge-request) comment, updated on every push.

Used by ``examples/ci/github-actions.yml`` and ``examples/ci/gitlab-ci.yml``:

    python -m erelease.devtools.prcomment plan.md                    # inside the CI job
    python -m erelease.devtools.prcomment --forge github --repo OWNER/NAME --pr 42 plan.md

A reviewer wants one plan per pull request, not one per push, so the comment carries a
hidden marker; if a comment with the marker exists it is edited, otherwise one is created.
The forge, repository and request number default to what the CI job's environment says
(GitHub Actions or GitLab CI). The token comes from ``GITHUB_TOKEN`` / ``GITLAB_TOKEN``
and is never printed: errors name the HTTP status only, never a response body.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

__all__ = ["FORGES", "MARKER", "Forge", "ForgeError", "post_or_update"]

MARKER = "<!-- erelease-plan -->"
_PAGE = 100


class ForgeError(Exception):
    """The forge refused or could not be reached; the message never holds the token."""


@dataclass(frozen=True)
class Forge:
    """Where one forge keeps the comments of a pull request, and how it is authenticated."""

    name: str
    comments: str  # list (GET, paged) and create (POST); formatted with repo and pr
    comment: str  # edit one; formatted with repo, pr and id
    edit_method: str
    token_env: str
    api_env: str
    default_api: str
    auth_header: str  # the header the token goes in, after auth_prefix
    auth_prefix: str = ""
    quote_repo: bool = False  # GitLab: "group/project" URL-encoded (or a numeric id)
    extra_headers: tuple[tuple[str, str], ...] = ()

    def headers(self, token: str) -> dict[str, str]:
        return {
            self.auth_header: self.auth_prefix + token,
            "User-Agent": "erelease-prcomment",
            **dict(self.extra_headers),
        }


FORGES = {
    "github": Forge(
        name="github",
        comments="/repos/{repo}/issues/{pr}/comments",
        comment="/repos/{repo}/issues/comments/{id}",
        edit_method="PATCH",
        token_env="GITHUB_TOKEN",
        api_env="GITHUB_API_URL",
        default_api="https://api.github.com",
        auth_header="Authorization",
        auth_prefix="Bearer ",
        extra_headers=(("Accept", "application/vnd.github+json"),),
    ),
    "gitlab": Forge(
        name="gitlab",
        comments="/projects/{repo}/merge_requests/{pr}/notes",
        comment="/projects/{repo}/merge_requests/{pr}/notes/{id}",
        edit_method="PUT",
        token_env="GITLAB_TOKEN",
        api_env="CI_API_V4_URL",
        default_api="https://gitlab.com/api/v4",
        auth_header="PRIVATE-TOKEN",
        quote_repo=True,
    ),
}


def post_or_update(
    *,
    api: str,
    repo: str,
    pr: int,
    body: str,
    token: str,
    forge: str = "github",
    marker: str = MARKER,
) -> str:
    """Create or edit the plan comment; return "created" or "updated"."""
    spec = FORGES[forge]
    where = {"repo": quote(repo, safe="") if spec.quote_repo else repo, "pr": pr}
    text = f"{marker}\n{body}"
    try:
        with httpx.Client(
            base_url=api.rstrip("/"), headers=spec.headers(token), timeout=30
        ) as client:
            existing = _find(client, spec.comments.format(**where), marker)
            if existing is not None:
                url = spec.comment.format(**where, id=existing)
                _check(client.request(spec.edit_method, url, json={"body": text}), "edit")
                return "updated"
            _check(client.post(spec.comments.format(**where), json={"body": text}), "comment")
            return "created"
    except httpx.HTTPError as exc:
        raise ForgeError(f"cannot reach {api}: {type(exc).__name__}") from None


def _find(client: httpx.Client, path: str, marker: str) -> int | None:
    page = 1
    while True:
        resp = client.get(path, params={"per_page": _PAGE, "page": page})
        _check(resp, "list comments")
        try:
            comments = resp.json()
        except ValueError:
            raise ForgeError("could not list comments: the answer is not JSON") from None
        if not isinstance(comments, list):
            raise ForgeError("could not list comments: the answer is not a list")
        for comment in comments:
            if isinstance(comment, dict) and marker in str(comment.get("body", "")):
                return int(comment["id"])
        if len(comments) < _PAGE:
            return None
        page += 1


def _check(resp: httpx.Response, what: str) -> None:
    if resp.status_code >= 400:
        raise ForgeError(f"could not {what}: HTTP {resp.status_code}")


def _defaults(env: os._Environ[str] | dict[str, str]) -> dict[str, str | None]:
    if env.get("GITLAB_CI"):
        return {
            "forge": "gitlab",
            "repo": env.get("CI_PROJECT_ID"),
            "pr": env.get("CI_MERGE_REQUEST_IID"),
        }
    pr = None
    ref = env.get("GITHUB_REF", "")  # refs/pull/<n>/merge on pull_request events
    if ref.startswith("refs/pull/"):
        pr = ref.split("/")[2]
    return {"forge": "github", "repo": env.get("GITHUB_REPOSITORY"), "pr": pr}


def main(argv: list[str] | None = None) -> int:
    found = _defaults(os.environ)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--forge", choices=sorted(FORGES), default=found["forge"])
    parser.add_argument("--repo", default=found["repo"], help="OWNER/NAME or a project id")
    parser.add_argument("--pr", type=int, default=found["pr"], help="pull/merge request number")
    parser.add_argument("--api", help="API base URL (default: from the CI environment)")
    parser.add_argument("body", type=Path, help="Markdown file (erelease plan --format markdown)")
    args = parser.parse_args(argv)
    spec = FORGES[args.forge]
    if not args.repo or args.pr is None:
        print("prcomment: give --repo and --pr (not found in the environment)", file=sys.stderr)
        return 64
    token = os.environ.get(spec.token_env, "")
    if not token:
        print(f"prcomment: {spec.token_env} is not set", file=sys.stderr)
        return 1
    api = args.api or os.environ.get(spec.api_env) or spec.default_api
    try:
        body = args.body.read_text(encoding="utf-8")
        result = post_or_update(
            api=api, repo=args.repo, pr=args.pr, body=body, token=token, forge=args.forge
        )
    except OSError as exc:
        print(f"prcomment: cannot read {args.body}: {exc.strerror}", file=sys.stderr)
        return 1
    except ForgeError as exc:
        print(f"prcomment: {exc}", file=sys.stderr)
        return 1
    print(f"prcomment: {result} the plan comment on {args.repo}#{args.pr}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
