"""Running many connectivity tests at once without letting one spoil the rest.

A fixed set of ``tests.concurrency`` slots bounds how many tests are in flight
(a queue of slots is the semaphore; each slot owns its HTTP clients, so tests
never contend for one connection pool). Each test gets its own deadline once
it holds a slot (``tests.timeout``, enforced by
:func:`asyncio.timeout` around the whole test, retries included), so a vendor
that never answers costs one slot for at most that long. Results come back in
the order of the targets, and ``progress`` sees each one as soon as it is known.

The flows themselves follow SPEC §5.5: an outgoing test is a token request
(RFC 6749 §4.3 or §4.4) and a TCP/TLS connection to the upload server; an
incoming test is a client-credentials token request (§4.4) at our own Token
URL and a bearer request (RFC 6750 §2.1) to the eTranscripts URL. Access
tokens live only in local variables and in the list of values to redact.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from erelease.checks._http import Clients, describe_url, send
from erelease.checks._network import Resolver, build_ssl_context, hostport, probe_upload
from erelease.checks._oauth import Reply, check_resource_reply, parse_token_reply, token_request
from erelease.checks._outcome import CheckFailure, Reason, Stage, redact, sanitize, utc_now
from erelease.checks._retry import RetryPolicy, retrying
from erelease.checks.targets import IncomingTarget, OutgoingTarget, Target, Unavailable
from erelease.errors import UsageError
from erelease.model import INCOMING, OUTGOING, CheckResult, Secret
from erelease.settings import TestSettings

__all__ = ["Progress", "run_checks", "run_checks_async"]

logger = logging.getLogger("erelease.checks")
Progress = Callable[[CheckResult], None]
#: The longest message a result carries.
MAX_MESSAGE = 400


def run_checks(
    targets: Sequence[Target],
    *,
    settings: TestSettings,
    progress: Progress | None = None,
) -> list[CheckResult]:
    """Test every target; one result per target, in the same order.

    Synchronous wrapper around :func:`run_checks_async` (it runs its own event
    loop, so call it from plain code, not from a coroutine). Raises
    :class:`~erelease.errors.UsageError` for impossible settings and
    :class:`~erelease.errors.ConfigError` for an unreadable ``tests.caBundle``;
    everything that goes wrong with a connection is a result, never an exception.
    """
    return asyncio.run(run_checks_async(targets, settings=settings, progress=progress))


async def run_checks_async(
    targets: Sequence[Target],
    *,
    settings: TestSettings,
    progress: Progress | None = None,
) -> list[CheckResult]:
    """:func:`run_checks` for callers that already run an event loop."""
    if settings.concurrency < 1:
        raise UsageError("tests.concurrency must be at least 1")
    if settings.timeout <= 0:
        raise UsageError("tests.timeout must be more than 0s")
    if settings.retries < 0:
        raise UsageError("tests.retries must not be negative")
    session = _Session(settings, build_ssl_context(settings.ca_bundle))
    # One slot per test allowed in flight: taking a slot is what bounds the
    # concurrency, and each slot brings its own HTTP clients (see _http.Clients).
    wanted = sum(1 for target in targets if not isinstance(target, Unavailable))
    slots: asyncio.Queue[Clients] = asyncio.Queue()
    for _ in range(min(settings.concurrency, wanted)):
        slots.put_nowait(session.new_slot())
    results: list[CheckResult | None] = [None] * len(targets)

    async def one(index: int, target: Target) -> None:
        if isinstance(target, Unavailable):
            result = _unavailable(target)
        else:
            clients = await slots.get()
            try:
                result = await session.check(target, clients)
            finally:
                slots.put_nowait(clients)
        results[index] = result
        if progress is not None:
            progress(result)

    try:
        async with asyncio.TaskGroup() as group:
            for index, target in enumerate(targets):
                group.create_task(one(index, target))
    finally:
        while not slots.empty():
            await slots.get_nowait().aclose()
    return [result for result in results if result is not None]


def _unavailable(target: Unavailable) -> CheckResult:
    return CheckResult(
        address=target.address,
        kind=target.kind,
        name=target.name,
        status="failed",
        reason="secret_unavailable",
        message=sanitize(target.message, MAX_MESSAGE),
        duration_ms=0,
        checked_at=utc_now(),
    )


class _Session:
    """What the tests of one run share: settings, DNS answers, TLS trust."""

    def __init__(self, settings: TestSettings, ssl_context: ssl.SSLContext) -> None:
        self.settings = settings
        self.ssl_context = ssl_context
        self.policy = RetryPolicy(retries=settings.retries)
        self.resolver = Resolver()

    def new_slot(self) -> Clients:
        return Clients(ssl_context=self.ssl_context, timeout=self.settings.timeout)

    async def check(self, target: OutgoingTarget | IncomingTarget, clients: Clients) -> CheckResult:
        stage = Stage()
        sensitive: list[Secret | str | None] = _secrets_of(target)
        timeout = self.settings.timeout
        started = time.monotonic()
        reason: Reason
        try:
            async with asyncio.timeout(timeout):
                step = _Step(clients, self.resolver, stage, started + timeout, sensitive)
                if isinstance(target, OutgoingTarget):
                    message = await self._outgoing(target, step)
                else:
                    message = await self._incoming(target, step)
            reason = "ok"
        except CheckFailure as failure:
            reason, message = failure.reason, failure.message
        except TimeoutError:
            reason, message = stage.reason, f"{stage.message} within {timeout:g}s"
        duration_ms = round((time.monotonic() - started) * 1000)
        logger.debug("%s: %s in %d ms", target.address, reason, duration_ms)
        return CheckResult(
            address=target.address,
            kind=OUTGOING if isinstance(target, OutgoingTarget) else INCOMING,
            name=target.name,
            status="valid" if reason == "ok" else "failed",
            reason=reason,
            # Redact before cutting: a cut secret would no longer match.
            message=sanitize(redact(message, sensitive), MAX_MESSAGE),
            duration_ms=duration_ms,
            checked_at=utc_now(),
        )

    async def _token(
        self,
        step: _Step,
        *,
        address: str,
        url: str,
        form: dict[str, str],
        headers: dict[str, str],
        client_words: str,
    ) -> Secret:
        where = f"token endpoint at {describe_url(url)}"

        async def attempt() -> Secret:
            reply = await step.send("POST", url, where, headers, form)
            return parse_token_reply(reply, where, client_words=client_words)

        token = await retrying(
            attempt, policy=self.policy, deadline=step.deadline, what=f"{address} token request"
        )
        step.sensitive.append(token)
        return token

    async def _outgoing(self, target: OutgoingTarget, step: _Step) -> str:
        form, headers = token_request(
            grant_type=target.grant_type,
            client_auth=target.client_auth,
            client_id=target.consumer_key,
            client_secret=target.consumer_secret,
            username=target.username,
            password=target.password,
        )
        step.sensitive.extend(_basic_credentials(headers))
        # The token proves the credentials; it is not used (no transcript is sent).
        await self._token(
            step,
            address=target.address,
            url=target.token_url,
            form=form,
            headers=headers,
            client_words="consumer key and secret",
        )

        async def probe() -> None:
            await probe_upload(
                target.upload_host,
                target.upload_port,
                tls=target.upload_tls,
                ssl_context=self.ssl_context,
                resolver=step.resolver,
                stage=step.stage,
            )

        what = f"{target.address} upload probe"
        await retrying(probe, policy=self.policy, deadline=step.deadline, what=what)
        transport = "TLS" if target.upload_tls else "TCP"
        return (
            f"token issued by {describe_url(target.token_url)}; upload server "
            f"{hostport(target.upload_host, target.upload_port)} accepts {transport} connections"
        )

    async def _incoming(self, target: IncomingTarget, step: _Step) -> str:
        form, headers = token_request(
            grant_type="client_credentials",
            client_auth="basic",
            client_id=target.client_id,
            client_secret=target.client_secret,
        )
        step.sensitive.extend(_basic_credentials(headers))
        token = await self._token(
            step,
            address=target.address,
            url=target.token_url,
            form=form,
            headers=headers,
            client_words="client ID and secret",
        )
        where = f"eTranscripts URL {describe_url(target.etranscripts_url)}"
        # RFC 6750 §2.1: the bearer token in the Authorization header only.
        bearer = {"Authorization": f"Bearer {token.reveal()}", "Accept": "application/json"}
        del token

        async def fetch() -> None:
            url = target.etranscripts_url
            reply = await step.send("GET", url, where, bearer)
            check_resource_reply(reply, where)

        what = f"{target.address} eTranscripts"
        await retrying(fetch, policy=self.policy, deadline=step.deadline, what=what)
        return f"token issued by {describe_url(target.token_url)}; {where} answered HTTP 200"


@dataclass
class _Step:
    """What the steps of one running test share."""

    clients: Clients
    resolver: Resolver
    stage: Stage
    deadline: float
    #: values to scrub from the message: the target's secrets, then any token
    sensitive: list[Secret | str | None]

    async def send(
        self,
        method: str,
        url: str,
        where: str,
        headers: dict[str, str],
        form: dict[str, str] | None = None,
    ) -> Reply:
        return await send(
            method,
            url,
            clients=self.clients,
            resolver=self.resolver,
            stage=self.stage,
            where=where,
            headers=headers,
            form=form,
        )


def _basic_credentials(headers: dict[str, str]) -> list[str]:
    """The base64 ``id:secret`` of a Basic ``Authorization`` header (RFC 7617 §2).

    Base64 hides nothing: a vendor that quotes the header it received back in
    its ``error_description`` would otherwise put the secret into the message.
    """
    scheme, _, credentials = headers.get("Authorization", "").partition(" ")
    return [credentials] if scheme == "Basic" and credentials else []


def _secrets_of(target: OutgoingTarget | IncomingTarget) -> list[Secret | str | None]:
    if isinstance(target, OutgoingTarget):
        # Only the secret fields (SPEC §2.3): the consumer key and user name may
        # be plain values in Git, and redacting them would garble messages.
        return [target.consumer_secret, target.password]
    return [target.client_secret]
