"""Properties: no input makes validation raise, no secret is echoed, fast == jsonschema."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erelease.config.schemas import compiled
from tests.fixtures.common import CANARY
from tests.unit.config.conftest import INCOMING, OUTGOING, SETTINGS, ConfigDir, set_field

FAST = settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

FRAGMENTS = [
    "apiVersion: erelease/v1\n",
    "kind: OutgoingConnection\n",
    "kind: IncomingConnection\n",
    "metadata:\n",
    "  name: x\n",
    "spec:\n",
    "  uploadPort: ",
    "  password: ",
    "  credentials: ",
    "  ",
    "- ",
    ": ",
    "? ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "*b",
    "<<: ",
    "!!python/object:os.system ",
    "!custom ",
    "!!int ",
    "!!str ",
    "---\n",
    "...\n",
    "\n",
    "\r\n",
    "# comment\n",
    '"',
    "'",
    "\\",
    "|\n",
    ">-\n",
    "\t",
    "\ufeff",
    "%YAML 1.1\n",
    "yes",
    "no",
    "0x1f",
    "0443",
    "1:30",
    "~",
    ".inf",
    "é",
    "ref+vault://secret/erelease/x#k",
    "ref+vault://secret/x?token=t#k",
    "https://u:p@host/x",
    "http://h",
    "\x00",
    "\x85",
    "\ud7ff",
]


def check_result(config: ConfigDir) -> list[str]:
    result = config.load()
    for d in result.diagnostics:
        assert d.line >= 1 and d.col >= 1
        assert d.severity in ("error", "warning")
        assert d.path
    return [d.format() for d in result.diagnostics]


@FAST
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(config: ConfigDir, data: bytes) -> None:
    config.write("a.yaml", data)
    check_result(config)


@FAST
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join))
def test_random_yamlish_text_never_raises(config: ConfigDir, text: str) -> None:
    config.write("a.yaml", text.encode("utf-8", "surrogatepass"))
    check_result(config)


@FAST
@given(st.text(max_size=500))
def test_random_unicode_never_raises(config: ConfigDir, text: str) -> None:
    config.write("a.yaml", text.encode("utf-8", "surrogatepass"))
    check_result(config)


@FAST
@given(
    field=st.sampled_from(["consumerSecret", "password", "authServer", "username"]),
    prefix=st.sampled_from(["", "yes", "0", "https://u:", "http://x:", '"', "[", "{a: ", "!!str "]),
    suffix=st.sampled_from(["", "@host/path", "]", "}", '"', " # c", "\n  extra: 1"]),
)
def test_secret_values_are_never_echoed(
    config: ConfigDir, field: str, prefix: str, suffix: str
) -> None:
    secret_field = field in ("consumerSecret", "password")
    if not secret_field and "u:" not in prefix:
        return  # only secret fields and userinfo in a URL are secrets
    config.write("a.yaml", set_field(OUTGOING, field, f"{prefix}{CANARY}{suffix}"))
    assert CANARY not in "\n".join(check_result(config))


@FAST
@given(
    prefix=st.sampled_from(["", "no", '"', "!!str ", "["]), suffix=st.sampled_from(["", "]", " x"])
)
def test_incoming_credentials_are_never_echoed(config: ConfigDir, prefix: str, suffix: str) -> None:
    config.write("a.yaml", set_field(INCOMING, "credentials", f"{prefix}{CANARY}{suffix}"))
    assert CANARY not in "\n".join(check_result(config))


# --- the fast predicate agrees with jsonschema -------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "",
            "erelease/v1",
            "OutgoingConnection",
            "password",
            "client_credentials",
            "basic",
            "body",
            "auto",
            "ref+vault://s/p#k",
            "x" * 101,
            "10s",
            "1h",
        ]
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

VALID = {
    "OutgoingConnection": yaml.safe_load(OUTGOING),
    "IncomingConnection": yaml.safe_load(INCOMING),
    "settings": yaml.safe_load(SETTINGS),
}


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*here, key))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, Any]:
    name = draw(st.sampled_from(sorted(VALID)))
    document = copy.deepcopy(VALID[name])
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        path = draw(st.sampled_from(_paths(document)))
        if not path:
            continue
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["set", "delete", "add"]))
        if action == "set":
            parent[path[-1]] = draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["grantType", "extra", "rotation", "labels", "x"]))] = draw(
                json_values
            )
    return name, document


@settings(max_examples=200, deadline=None)
@given(mutated())
def test_fast_predicate_agrees_with_jsonschema(case: tuple[str, Any]) -> None:
    name, document = case
    schema = compiled(name)
    assert schema.fast is not None
    assert schema.fast(document) == schema.validator.is_valid(document)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(VALID)), json_values)
def test_fast_predicate_agrees_on_arbitrary_values(name: str, value: Any) -> None:
    schema = compiled(name)
    assert schema.fast is not None
    assert schema.fast(value) == schema.validator.is_valid(value)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "ref+vault://",
                "ref+openbao://",
                "secret",
                "erelease",
                "/",
                "#",
                "?",
                "version=2",
                "token=x",
                "data",
                "metadata",
                ".",
                "..",
                "-",
                "_",
                "a",
                "@",
                ":",
                " ",
                "\n",
                "=",
                "&",
            ]
        ),
        max_size=12,
    ).map("".join),
    st.booleans(),
)
def test_reference_fast_path_agrees_with_parse_ref(text: str, require_key: bool) -> None:
    from erelease.config.semantics import check_ref
    from erelease.model import parse_ref

    checked = check_ref(text, require_key=require_key)
    try:
        expected = parse_ref(text, require_key=require_key)
    except ValueError:
        assert checked.errors
        return
    if not checked.errors:
        assert checked.value == expected
        assert checked.value.scheme == expected.scheme  # type: ignore[union-attr]
    else:
        assert any(ch.isspace() for ch in text)  # stricter only about whitespace


_URL_PARTS = st.lists(
    st.sampled_from(
        [
            "http",
            "https",
            "ftp",
            "://",
            "user:pw@",
            "@",
            "x.example",
            "[::1]",
            "[",
            "]",
            ":",
            "443",
            "0",
            "99999",
            "/",
            "/p",
            "?",
            "q=1",
            "#",
            "f",
            " ",
            "\n",
            "_",
            "-",
            ".",
        ]
    ),
    max_size=12,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_URL_PARTS, st.text(max_size=60)), st.booleans())
def test_server_check_never_raises_and_its_normal_form_is_stable(text: str, http: bool) -> None:
    from erelease.config.semantics import check_server

    checked = check_server(text, allow_http=http, path_field="authPath")
    assert len(set(checked.errors)) == len(checked.errors)  # each problem once
    if checked.errors:
        assert checked.value is None
        if "pw@" in text:
            assert not any("pw" in error for error in checked.errors)
    else:
        assert isinstance(checked.value, str)
        again = check_server(checked.value, allow_http=http, path_field="authPath")
        assert (again.value, again.errors) == (checked.value, ())
