"""Benchmark: apply and no-op plan of 10,000 connections (issues 4 and 6).

10,000 outgoing connections, one per file, whose ``consumerSecret`` and
``password`` reference 100 KV v2 secrets on an OpenBao dev server started for
the run. Measured in the same run, against the bare YAML parse of the same
files (``yaml.load`` with ``CSafeLoader``):

- the first ``apply --auto-approve --no-test`` of all 10,000 (library call:
  ``Workspace(load_settings(dir))`` + ``apply``);
- a no-op ``plan`` (``make_plan``) of the applied config, with the share of it
  spent in ``load_config``, its peak RSS, and the Vault requests it makes
  (goal: one request per path — the value read gives the version and proves
  each ``#key`` exists);
- the same apply and no-op plan on PostgreSQL, as a ratio to SQLite.

Every apply, plan and parse runs in a fresh subprocess, so that its peak RSS
is its own and all of them start from the same interpreter state; the parses
alternate with the plans, best of three each, so noise hits both alike. Times
are measured inside the subprocess, from ``load_settings`` to the finished
plan or apply, and from the first file opened to the last parsed
(interpreter start-up and imports excluded for all).

PostgreSQL (issue 6) runs from the ``pgserver`` wheel on this machine; if it
is missing, those rows say so.

``python -m bench.plan_apply`` prints the rows; ``PLAN_BENCH_FILES`` sets the
number of connections (default 10,000). To profile one step against a config
made by :func:`generate` and applied: ``python -m bench.plan_apply --child plan
DIR OUT.prof`` (with ``BAO_TOKEN`` set), then read ``OUT.prof`` with ``pstats``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import OUTGOING_YAML, Row, timed, write_connections

FILES = int(os.environ.get("PLAN_BENCH_FILES", "10000"))
PATHS = 100
MOUNT = "secret"
REPEAT = 3
PLAN_GOAL = 1.5  # no-op plan <= 1.5x the parse (issue 4)
RSS_GOAL_MB = 300.0  # plan peak RSS < 300 MB (issue 4)
ROOT = Path(__file__).resolve().parents[1]

_SETTINGS = """\
stack: bench
state: sqlite:///.erelease/state.db
incoming:
  baseUrl: https://district.example.org/campus
vault:
  address: {addr}
  auth: {{method: token}}
"""


def generate(config_dir: Path, vault_addr: str, count: int = FILES) -> list[Path]:
    """``erelease.yaml`` plus ``count`` outgoing connections, one per file, in 50 directories."""
    (config_dir / "erelease.yaml").write_text(_SETTINGS.format(addr=vault_addr), "utf-8")

    def file_of(i: int) -> tuple[str, str]:
        secret = f"{MOUNT}/erelease/bench/p{i % PATHS:03d}"
        return f"vendor-{i:05d}.yaml", OUTGOING_YAML.format(i=i, group=i % 7, secret=secret)

    return write_connections(config_dir, count, file_of)


def _connection_files(config_dir: Path) -> list[str]:
    found = [
        os.path.join(dirpath, name)
        for dirpath, _, names in os.walk(config_dir / "connections.d")
        for name in names
        if name.endswith((".yaml", ".yml"))
    ]
    return sorted(found)


# -- what runs in the measuring subprocess ------------------------------------------


def _child_parse(config_dir: Path) -> dict[str, Any]:
    import yaml

    files = _connection_files(config_dir)

    def parse() -> int:
        count = 0
        for path in files:
            with open(path, "rb") as handle:
                if yaml.load(handle.read(), Loader=yaml.CSafeLoader) is not None:
                    count += 1
        return count

    seconds, parsed = timed(parse)
    return {"seconds": seconds, "documents": parsed}


class _RequestCounter:
    """Counts the Vault HTTP requests of this process by kind (metadata / data / other)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {"metadata": 0, "data": 0, "other": 0}

    def install(self) -> None:
        from erelease.secrets.transport import Transport

        original = Transport.request
        counts = self.counts

        def counting(transport: Transport, method: str, api_path: str, **kwargs: Any) -> Any:
            kind = "metadata" if "/metadata/" in api_path else "other"
            if kind == "other" and "/data/" in api_path:
                kind = "data"
            counts[kind] += 1
            return original(transport, method, api_path, **kwargs)

        Transport.request = counting  # type: ignore[method-assign,assignment]


def _child_engine(what: str, config_dir: Path, profile: str | None) -> dict[str, Any]:
    """A first apply (``--auto-approve --no-test``) or a no-op plan, timed from the settings."""
    import resource

    from erelease.config import load_settings
    from erelease.engine import Workspace, apply, make_plan

    counter = _RequestCounter()
    counter.install()
    profiler: Any = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start = time.perf_counter()
    with Workspace(load_settings(config_dir), environ=os.environ) as ws:
        ws.config  # noqa: B018 - timed on its own: what load_config costs of the whole
        config_seconds = time.perf_counter() - start
        if what == "plan":
            summary = make_plan(ws).summary
        else:
            result = apply(ws, run_tests=None)
            if not result.applied:
                raise RuntimeError("the first apply changed nothing")
            summary = result.plan.summary
        seconds = time.perf_counter() - start
        data_reads = ws.vault.reads  # value reads; the Vault session logs in lazily
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    return {
        "seconds": seconds,
        "config_seconds": config_seconds,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "summary": summary,
        "data_reads": data_reads,
        "requests": counter.counts,
    }


def _child_main(argv: list[str]) -> None:
    what, config_dir = argv[0], Path(argv[1])
    profile = argv[2] if len(argv) > 2 else None
    if what == "parse":
        result = _child_parse(config_dir)
    else:
        result = _child_engine(what, config_dir, profile)
    print(json.dumps(result))


# -- the parent: servers, apply, subprocesses, rows ---------------------------------


def _child(what: str, config_dir: Path, env: Mapping[str, str], *extra: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.plan_apply", "--child", what, str(config_dir), *extra],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=ROOT,
        check=False,
    )
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the {what} subprocess failed: {tail}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _env(token: str, state: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "ERELEASE_"))}
    env["BAO_TOKEN"] = token
    env["ERELEASE_ACTOR"] = "bench"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if state is not None:
        env["ERELEASE_STATE"] = state
    return env


def _plans(
    config_dir: Path, env: Mapping[str, str], *, with_parse: bool
) -> tuple[list[dict[str, Any]], list[float]]:
    """REPEAT no-op plans (and parses, alternating), each in a fresh subprocess."""
    plans: list[dict[str, Any]] = []
    parses: list[float] = []
    for _ in range(REPEAT):
        if with_parse:
            parsed = _child("parse", config_dir, env)
            if parsed["documents"] != FILES:
                raise RuntimeError(f"parsed {parsed['documents']} documents, not {FILES}")
            parses.append(parsed["seconds"])
        plan = _child("plan", config_dir, env)
        summary = plan["summary"]
        if summary["noop"] != FILES or sum(summary.values()) != FILES:
            raise RuntimeError(f"the re-plan is not a no-op: {summary}")
        plans.append(plan)
    return plans, parses


def _first_apply(config_dir: Path, env: Mapping[str, str]) -> dict[str, Any]:
    applied = _child("apply", config_dir, env)
    if applied["summary"]["create"] != FILES:
        raise RuntimeError(f"the first apply did not create {FILES}: {applied['summary']}")
    return applied


@dataclass
class _Backend:
    """What one state backend measured: its first apply and its no-op plans."""

    apply: dict[str, Any]
    plans: list[dict[str, Any]]

    @property
    def plan(self) -> dict[str, Any]:
        """The fastest no-op plan, with the highest RSS any of them reached."""
        best = dict(min(self.plans, key=lambda p: float(p["seconds"])))
        best["rss_mb"] = max(float(p["rss_mb"]) for p in self.plans)
        return best


@contextmanager
def _postgres() -> Iterator[str | None]:
    """The DSN of a fresh database on a local PostgreSQL, or None without pgserver."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.fixtures.postgres import LocalPostgres, pgserver_module

    if pgserver_module() is None:
        yield None
        return
    with LocalPostgres(durable=True) as server:
        yield server.create_database("bench_plan")


def _openbao() -> Any:
    from erelease.devtools.openbao import OpenBaoServer

    return OpenBaoServer()


def run() -> list[Row]:
    server = _openbao().start()
    try:
        for p in range(PATHS):
            data = {"consumer_secret": f"cs-{p}", "password": f"pw-{p}"}
            server.kv_put(MOUNT, f"erelease/bench/p{p:03d}", data)
        with tempfile.TemporaryDirectory(prefix="erelease-bench-") as tmp:
            config_dir = Path(tmp)
            generate(config_dir, server.addr)
            env = _env(server.root_token)
            sq_apply = _first_apply(config_dir, env)
            sq_plans, parses = _plans(config_dir, env, with_parse=True)
            sqlite = _Backend(sq_apply, sq_plans)
            postgres: _Backend | None = None
            with _postgres() as dsn:
                if dsn is not None:
                    pg_env = _env(server.root_token, state=dsn)
                    pg_apply = _first_apply(config_dir, pg_env)
                    pg_plans, _ = _plans(config_dir, pg_env, with_parse=False)
                    postgres = _Backend(pg_apply, pg_plans)
    finally:
        server.stop()
    return _rows(min(parses), sqlite, postgres)


def _s(seconds: float) -> str:
    return f"{seconds:.2f} s"


def _rows(parse: float, sqlite: _Backend, postgres: _Backend | None) -> list[Row]:
    n = f"{FILES:,}"
    baseline = f"{_s(parse)} yaml.load CSafeLoader"
    applied, plan = sqlite.apply, sqlite.plan
    ratio = plan["seconds"] / parse
    requests = plan["requests"]
    rows = [
        Row(
            f"apply {n} connections (first, --no-test), SQLite",
            f"{_s(applied['seconds'])}, {applied['rss_mb']:.0f} MB",
            baseline,
            f"{applied['seconds'] / parse:.2f}x",
            "report",
        ),
        Row(
            f"no-op plan of {n} connections, SQLite",
            _s(plan["seconds"]),
            baseline,
            f"{ratio:.2f}x",
            f"<= {PLAN_GOAL}x",
            ratio <= PLAN_GOAL,
        ),
        Row(
            f"no-op plan of {n}: time in load_config (parse + validate)",
            f"{_s(plan['config_seconds'])} ({plan['config_seconds'] / plan['seconds']:.0%})",
            baseline,
            f"{plan['config_seconds'] / parse:.2f}x",
            "report",
        ),
        Row(
            f"no-op plan of {n}: peak RSS of its process",
            f"{plan['rss_mb']:.0f} MB",
            f"{RSS_GOAL_MB:.0f} MB goal",
            f"{plan['rss_mb'] / RSS_GOAL_MB:.2f}x",
            f"< {RSS_GOAL_MB:.0f} MB",
            plan["rss_mb"] < RSS_GOAL_MB,
        ),
        Row(
            f"no-op plan of {n}: Vault requests ({PATHS} paths)",
            f"{requests['metadata']} metadata, {plan['data_reads']} value reads",
            f"{PATHS} distinct paths",
            f"{(requests['metadata'] + plan['data_reads']) / PATHS:.2f}x",
            f"== {PATHS} requests",
            requests["metadata"] + plan["data_reads"] == PATHS,
        ),
    ]
    if postgres is None:
        for what in ("apply", "no-op plan"):
            figure = f"{what} of {n}, PostgreSQL vs SQLite"
            rows.append(Row(figure, "skipped (pgserver missing)", "", "", "report"))
        return rows
    pg_apply, pg_plan = postgres.apply, postgres.plan
    rows += [
        Row(
            f"apply {n} connections (first, --no-test), PostgreSQL vs SQLite",
            f"{_s(pg_apply['seconds'])} PG",
            f"{_s(applied['seconds'])} SQLite",
            f"{pg_apply['seconds'] / applied['seconds']:.2f}x",
            "report",
        ),
        Row(
            f"no-op plan of {n}, PostgreSQL vs SQLite",
            f"{_s(pg_plan['seconds'])} PG, {pg_plan['rss_mb']:.0f} MB",
            f"{_s(plan['seconds'])} SQLite",
            f"{pg_plan['seconds'] / plan['seconds']:.2f}x",
            "report",
        ),
    ]
    return rows


def main() -> None:
    for row in run():
        status = "" if row.met is None else ("  met" if row.met else "  NOT MET")
        print(
            f"{row.figure}: {row.value} (baseline {row.baseline}; {row.ratio}; "
            f"goal {row.goal}){status}"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(sys.argv[2:])
    else:
        main()
