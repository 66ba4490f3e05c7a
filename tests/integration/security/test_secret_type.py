"""Every way Python turns a value into text or bytes leaves a ``Secret`` wrapped."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import traceback

import pytest

from erelease.model import Secret
from tests.fixtures.common import CANARY


def test_no_conversion_reveals_a_secret(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret(CANARY)
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("erelease.test")
    log.info("value %s %r %d", secret, secret, 1)
    log.info("in a mapping: %(s)s", {"s": secret})
    log.info("%s", [secret, {"k": (secret,)}])
    texts = [
        str(secret),
        repr(secret),
        f"{secret} {secret!r} {secret!s} {secret:>40} {secret=}",
        "%s %r" % (secret, secret),  # noqa: UP031 - the old formatting is what is under test
        "{} {!r} {:x}".format(secret, secret, secret),  # noqa: UP032
        repr({"data": {"client_secret": secret}}),
        caplog.text,
        *(r.getMessage() for r in caplog.records),
    ]
    try:
        {}[secret]  # an exception whose text quotes the value
    except KeyError as exc:
        texts.append("".join(traceback.format_exception(exc)))
    for text in texts:
        assert CANARY not in text
        assert "***" in text
    # Conversions that would carry the value on refuse instead.
    for convert in (pickle.dumps, copy.copy, copy.deepcopy, json.dumps):
        with pytest.raises(TypeError) as info:
            convert(secret)
        assert CANARY not in str(info.value)
    with pytest.raises(TypeError):
        pickle.dumps(secret, protocol=0)
    assert secret.reveal() == CANARY and secret == Secret(CANARY)
