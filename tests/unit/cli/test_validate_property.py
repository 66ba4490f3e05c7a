"""Whatever bytes land in connections.d/, `erelease validate` exits 0 or 1, never a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erelease.cli import cli

YAMLISH = st.lists(
    st.sampled_from(
        [
            "apiVersion: erelease/v1\n",
            "kind: OutgoingConnection\n",
            "kind: IncomingConnection\n",
            "metadata:\n  name: no\n",
            "metadata: {name: a}\n",
            "spec:\n",
            "  uploadPort: 0443\n",
            "  authServer: http://user:pw@x\n",
            "  password: hunter2\n",
            "  credentials: ref+vault://secret/x?token=t\n",
            "a: &a [*a]\n",
            "!!python/object/apply:os.system ['true']\n",
            "---\n",
            "key: 1\nkey: 2\n",
            "\ufeff",
            "\r\n",
            "\x00\xff",
            "- [",
            "{",
        ]
    ),
    max_size=12,
).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    content=st.one_of(
        st.binary(max_size=300), YAMLISH.map(lambda s: s.encode("utf-8", "surrogatepass"))
    )
)
def test_validate_never_crashes(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "connections.d").mkdir()
        (root / "connections.d" / "x.yaml").write_bytes(content)
        result = CliRunner().invoke(cli, ["-C", str(root), "validate"])
        assert result.exit_code in (0, 1), (result.output, result.stderr, result.exception)
        assert "Traceback" not in result.output + result.stderr
        if result.exit_code == 1:
            assert "x.yaml:" in result.output


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    content=st.one_of(
        st.binary(max_size=300), YAMLISH.map(lambda s: s.encode("utf-8", "surrogatepass"))
    )
)
def test_validate_never_crashes_on_the_settings_file(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "erelease.yaml").write_bytes(content)
        result = CliRunner().invoke(cli, ["-C", str(root), "validate"])
        assert result.exit_code in (0, 1), (result.output, result.stderr, result.exception)
        assert "Traceback" not in result.output + result.stderr
        if result.exit_code == 1:
            assert "erelease.yaml" in result.output + result.stderr
