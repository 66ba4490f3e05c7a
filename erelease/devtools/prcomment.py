"""Post a plan as ONE pull-request comment, updating it on every push.

Used by ``examples/ci/github-actions.yml`` (and adaptable to other forges):

    python -m erelease.devtools.prcomment --repo OWNER/NAME --pr 42 plan.md

The comment carries a hidden marker; if a comment with the marker exists it is
edited, otherwise one is created. The token comes from ``GITHUB_TOKEN`` and is
never printed; errors name the HTTP status only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx

__all__ = ["MARKER", "post_or_update"]

MARKER = "<!-- erelease-plan -->"


def post_or_update(
    *, api: str, repo: str, pr: int, body: str, token: str, marker: str = MARKER
) -> str:
    """Create or edit the plan comment; return "created" or "updated"."""
    text = f"{marker}\n{body}"
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "User-Agent": "erelease-prcomment",
    }
    with httpx.Client(base_url=api.rstrip("/"), headers=headers, timeout=30) as client:
        existing: int | None = None
        page = 1
        while existing is None:
            resp = client.get(
                f"/repos/{repo}/issues/{pr}/comments", params={"per_page": 100, "page": page}
            )
            _check(resp, "list comments")
            comments = resp.json()
            for comment in comments:
                if isinstance(comment, dict) and marker in str(comment.get("body", "")):
                    existing = int(comment["id"])
                    break
            if len(comments) < 100:
                break
            page += 1
        if existing is not None:
            _check(
                client.patch(f"/repos/{repo}/issues/comments/{existing}", json={"body": text}),
                "update the comment",
            )
            return "updated"
        _check(client.post(f"/repos/{repo}/issues/{pr}/comments", json={"body": text}), "comment")
        return "created"


def _check(resp: httpx.Response, what: str) -> None:
    if resp.status_code >= 400:
        raise SystemExit(f"prcomment: could not {what}: HTTP {resp.status_code}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True, help="OWNER/NAME")
    parser.add_argument("--pr", required=True, type=int, help="pull request number")
    parser.add_argument("--api", default=os.environ.get("GITHUB_API_URL", "https://api.github.com"))
    parser.add_argument("body", type=Path, help="Markdown file (erelease plan --format markdown)")
    args = parser.parse_args(argv)
    token = os.environ.get("GITHUB_TOKEN", "")
    if not token:
        print("prcomment: GITHUB_TOKEN is not set", file=sys.stderr)
        return 1
    body = args.body.read_text(encoding="utf-8")
    try:
        result = post_or_update(api=args.api, repo=args.repo, pr=args.pr, body=body, token=token)
    except httpx.HTTPError as exc:
        print(f"prcomment: cannot reach {args.api}: {type(exc).__name__}", file=sys.stderr)
        return 1
    print(f"prcomment: {result} the plan comment on {args.repo}#{args.pr}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
