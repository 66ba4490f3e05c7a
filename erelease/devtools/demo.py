"""``make demo``: the whole job on the embedded default, with local stand-ins.

It starts an OpenBao dev server (the district's Vault), a vendor simulator over
TLS (standing in for Parchment and the Clearinghouse) and ``erelease serve``
(the district's side of incoming connections); copies the example
``connections.d/`` into ``.demo/`` pointed at the simulator; runs validate,
plan, apply, test and show; plays a transcript provider's full round trip with
the shared Information to Share; and stops everything it started.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from erelease.devtools.openbao import OpenBaoServer, free_port
from erelease.devtools.vendorsim import SimClient, VendorSim

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / ".demo"

#: What the simulated vendors accept — the same values are put into Vault.
VENDOR_CLIENTS: dict[str, dict[str, Any]] = {
    "parchment": {
        "path": "erelease/parchment",
        "secret": {"consumer_secret": "demo-parchment-consumer-secret", "password": "demo-pw-1"},
    },
    "nsc": {
        "path": "erelease/nsc",
        "secret": {"consumer_key": "demo-nsc-consumer-key", "consumer_secret": "demo-nsc-secret"},
    },
}


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def erelease(
    *args: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "erelease", "-C", str(DEMO), *args]
    print("$ erelease " + " ".join(args), flush=True)
    proc = subprocess.run(cmd, env=env, text=True, capture_output=True, check=False)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    if check and proc.returncode != 0:
        raise SystemExit(f"demo: 'erelease {' '.join(args)}' exited {proc.returncode}")
    return proc


def _spec_value(text: str, key: str) -> str | None:
    match = re.search(rf"^\s*{key}:\s*(\S+)", text, re.MULTILINE)
    return match.group(1) if match else None


def prepare_config(sim: VendorSim, serve_port: int) -> list[SimClient]:
    """Copy the examples, pointing their servers at the simulator."""
    shutil.rmtree(DEMO, ignore_errors=True)
    (DEMO / "connections.d").mkdir(parents=True)
    clients: list[SimClient] = []
    for source in sorted((ROOT / "connections.d").glob("*.y*ml")):
        text = source.read_text(encoding="utf-8")
        if "kind: OutgoingConnection" in text:
            text = re.sub(r"(authServer|uploadServer):\s*\S+", rf"\1: {sim.url}", text)
            text = re.sub(r"uploadPort:\s*\d+", f"uploadPort: {sim.port}", text)
            name = _spec_value(text, "name") or source.stem
            vendor = VENDOR_CLIENTS.get(name)
            if vendor is not None:
                secret = vendor["secret"]
                key = _spec_value(text, "consumerKey") or ""
                clients.append(
                    SimClient(
                        client_id=secret["consumer_key"] if key.startswith("ref+") else key,
                        client_secret=secret["consumer_secret"],
                        username=_spec_value(text, "username"),
                        password=secret.get("password"),
                    )
                )
        (DEMO / "connections.d" / source.name).write_text(text, encoding="utf-8")
    transcripts = ROOT / "examples" / "transcripts"
    (DEMO / "erelease.yaml").write_text(
        "\n".join(
            [
                "stack: demo",
                "state: sqlite:///.erelease/state.db",
                "incoming:",
                f"  baseUrl: http://127.0.0.1:{serve_port}/campus",
                "tests:",
                f"  caBundle: {sim.ca_pem_path}",
                "  timeout: 5s",
                "serve:",
                f"  transcripts: {transcripts}",
                "  tokenTtl: 10m",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return clients


def wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"demo: {url} did not answer")


def shared_values(env: dict[str, str]) -> dict[str, str]:
    """The Information to Share, secret included (read quietly: it is not for the log)."""
    cmd = [sys.executable, "-m", "erelease", "-C", str(DEMO), "show", "cfnc", "--reveal"]
    print("$ erelease show cfnc --reveal   (output not shown: it holds the client secret)")
    proc = subprocess.run(
        [*cmd, "--format", "json"], env=env, text=True, capture_output=True, check=True
    )
    outputs: dict[str, str] = json.loads(proc.stdout)["outputs"]
    return outputs


def provider_round_trip(env: dict[str, str]) -> str:
    """What a transcript provider does with the four shared values; returns its token."""
    shared = shared_values(env)
    token_url, listing_url = shared["tokenUrl"], shared["eTranscriptsUrl"]
    token = httpx.post(
        token_url,
        data={"grant_type": "client_credentials"},
        auth=(shared["clientId"], shared["clientSecret"]),
    )
    token.raise_for_status()
    access = token.json()["access_token"]
    print(f"provider: POST {token_url} -> {token.status_code}, a bearer token")
    listing = httpx.get(listing_url, headers={"Authorization": f"Bearer {access}"})
    listing.raise_for_status()
    items = listing.json()["items"]
    print(f"provider: GET {listing_url} -> {listing.status_code}, {len(items)} transcript(s)")
    if items:
        doc = httpx.get(
            listing_url + "/" + items[0]["documentId"],
            headers={"Authorization": f"Bearer {access}"},
        )
        print(
            f"provider: GET …/eTranscripts/{items[0]['documentId']} -> {doc.status_code}, "
            f"{len(doc.content)} bytes of {doc.headers.get('content-type')}"
        )
    return str(access)


def revocation(env: dict[str, str], access: str) -> None:
    """Rotate the provider's secret: its old token stops working at once."""
    shared = shared_values(env)
    erelease("apply", "--auto-approve", "--no-test", "--rotate", "cfnc", env=env)
    old = httpx.get(shared["eTranscriptsUrl"], headers={"Authorization": f"Bearer {access}"})
    print(f"provider: the old token now gets HTTP {old.status_code} (revoked by the rotation)")


def run(argv: Sequence[str] = ()) -> int:
    started = time.monotonic()
    banner("starting a local OpenBao dev server (the district's Vault)")
    bao = OpenBaoServer().start()
    sim = VendorSim(tls=True)
    serve: subprocess.Popen[bytes] | None = None
    try:
        sim.start()
        print(f"vendor simulator (TLS, self-signed CA) on {sim.url}")
        serve_port = free_port()
        for client in prepare_config(sim, serve_port):
            sim.add_client(client)
        for vendor in VENDOR_CLIENTS.values():
            bao.kv_put("secret", vendor["path"], vendor["secret"])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env.update({"BAO_ADDR": bao.addr, "BAO_TOKEN": bao.root_token, "NO_COLOR": "1"})
        print(f"OpenBao on {bao.addr}; vendor secrets written under secret/erelease/")
        banner("starting erelease serve (the district's Token URL and eTranscripts URL)")
        serve_log = (DEMO / "serve.log").open("wb")
        serve = subprocess.Popen(
            [sys.executable, "-m", "erelease", "-C", str(DEMO), "serve", "--port", str(serve_port)],
            env=env,
            stdout=serve_log,
            stderr=subprocess.STDOUT,
        )
        print(f"erelease serve on http://127.0.0.1:{serve_port}/campus (log: {DEMO}/serve.log)")
        wait_http(f"http://127.0.0.1:{serve_port}/healthz")
        banner("validate")
        erelease("validate", env=env)
        banner("plan")
        erelease("plan", env=env)
        banner("apply")
        erelease("apply", "--auto-approve", env=env)
        banner("test")
        erelease("test", env=env)
        banner("show")
        erelease("show", env=env)
        erelease("show", "cfnc", env=env)
        banner("a provider's round trip with the Information to Share")
        access = provider_round_trip(env)
        banner("the record of disclosures")
        erelease("disclosures", env=env)
        banner("rotate the provider's secret: old credentials and tokens stop at once")
        revocation(env, access)
        banner("plan again: nothing to do")
        erelease("plan", "--detailed-exitcode", env=env)
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(timeout=10)
        sim.stop()
        bao.stop()
    print(f"\ndemo finished in {time.monotonic() - started:.1f} s; files are in {DEMO}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
