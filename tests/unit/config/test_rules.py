"""One test per validation rule: the exact file:line:col, field and message."""

from __future__ import annotations

import pytest

from erelease.model import SecretRef
from tests.unit.config.conftest import INCOMING, OUTGOING, ConfigDir, drop_field, set_field

A = "connections.d/a.yaml"


def only(config: ConfigDir, text: str) -> list[str]:
    config.write("a.yaml", text)
    return config.lines()


def test_valid_outgoing_and_incoming_have_no_diagnostics(config: ConfigDir) -> None:
    config.write("a.yaml", OUTGOING)
    config.write("b.yaml", INCOMING)
    result = config.load()
    assert result.diagnostics == []
    assert [c.address for c in result.connections] == ["incoming/cfnc", "outgoing/parchment"]


def test_upload_port_above_range(config: ConfigDir) -> None:
    assert only(config, set_field(OUTGOING, "uploadPort", "70000")) == [
        f"{A}:9:15: error: spec.uploadPort: must be ≤ 65535"
    ]


def test_upload_port_below_range(config: ConfigDir) -> None:
    assert only(config, set_field(OUTGOING, "uploadPort", "0")) == [
        f"{A}:9:15: error: spec.uploadPort: must be ≥ 1"
    ]


def test_upload_port_quoted(config: ConfigDir) -> None:
    assert only(config, set_field(OUTGOING, "uploadPort", '"443"')) == [
        f"{A}:9:15: error: spec.uploadPort: must be an integer, not a string; "
        "write 443 without quotes"
    ]


def test_upload_port_octal_surprise(config: ConfigDir) -> None:
    assert only(config, set_field(OUTGOING, "uploadPort", "0443")) == [
        f'{A}:9:15: error: spec.uploadPort: "0443" is read as the number 291 in YAML 1.1 '
        "(a leading 0 means octal); write the number in plain decimal, or quote it if it is "
        'text: "0443"'
    ]


def test_name_pattern(config: ConfigDir) -> None:
    assert only(config, set_field(OUTGOING, "name", "Parchment_1")) == [
        f"{A}:4:9: error: metadata.name: must be 1 to 63 lowercase letters, digits or '-', "
        "starting and ending with a letter or digit"
    ]


def test_name_with_a_trailing_newline(config: ConfigDir) -> None:
    assert only(config, set_field(OUTGOING, "name", '"parchment\\n"')) == [
        f"{A}:4:9: error: metadata.name: must be 1 to 63 lowercase letters, digits or '-', "
        "starting and ending with a letter or digit"
    ]


@pytest.mark.parametrize(("raw", "meaning"), [("no", "false"), ("yes", "true"), ("off", "false")])
def test_name_yaml11_boolean(config: ConfigDir, raw: str, meaning: str) -> None:
    assert only(config, set_field(OUTGOING, "name", raw)) == [
        f'{A}:4:9: error: metadata.name: "{raw}" is read as the boolean {meaning} in YAML; '
        f'quote it: "{raw}"'
    ]


def test_string_field_read_as_a_number(config: ConfigDir) -> None:
    assert only(config, set_field(OUTGOING, "consumerKey", "0123")) == [
        f'{A}:11:16: error: spec.consumerKey: "0123" is read as the number 83 in YAML; '
        'quote it: "0123"'
    ]


def test_empty_value(config: ConfigDir) -> None:
    assert only(config, set_field(OUTGOING, "uploadPath", "")) == [
        f"{A}:10:14: error: spec.uploadPath: has no value; expected a string"
    ]


def test_username_at_most_100_characters(config: ConfigDir) -> None:
    assert only(config, set_field(OUTGOING, "username", "u" * 101)) == [
        f"{A}:13:13: error: spec.username: must be at most 100 characters long (it has 101)"
    ]
    assert only(config, set_field(OUTGOING, "username", "u" * 100)) == []


def test_unknown_field_suggests_the_known_one(config: ConfigDir) -> None:
    assert only(config, OUTGOING + "  uploadport: 1\n") == [
        f'{A}:15:3: error: spec.uploadport: unknown field; did you mean "uploadPort"?'
    ]


def test_unknown_top_level_field(config: ConfigDir) -> None:
    assert only(config, OUTGOING + "status: {}\n") == [
        f"{A}:15:1: error: status: unknown field; expected one of: apiVersion, kind, metadata, spec"
    ]


def test_required_field_missing(config: ConfigDir) -> None:
    assert only(config, drop_field(OUTGOING, "authPath")) == [
        f"{A}:5:1: error: spec.authPath: is required"
    ]


def test_password_required_for_the_password_grant(config: ConfigDir) -> None:
    assert only(config, drop_field(OUTGOING, "password")) == [
        f"{A}:5:1: error: spec.password: is required (unless grantType is client_credentials)"
    ]


def test_client_credentials_needs_no_username_or_password(config: ConfigDir) -> None:
    text = (
        drop_field(drop_field(OUTGOING, "username"), "password")
        + "  grantType: client_credentials\n"
    )
    config.write("a.yaml", text)
    result = config.load()
    assert result.diagnostics == []
    assert result.connections[0].spec["grantType"] == "client_credentials"
    assert "username" not in result.connections[0].spec


def test_grant_type_enum(config: ConfigDir) -> None:
    assert only(config, OUTGOING + "  grantType: implicit\n") == [
        f"{A}:15:14: error: spec.grantType: must be one of: password, client_credentials "
        '(not "implicit")'
    ]


def test_unknown_kind(config: ConfigDir) -> None:
    assert only(config, set_field(OUTGOING, "kind", "VendorConnection")) == [
        f'{A}:2:7: error: kind: unknown kind "VendorConnection"; expected OutgoingConnection '
        "or IncomingConnection"
    ]


def test_kind_in_the_wrong_case(config: ConfigDir) -> None:
    assert only(config, set_field(OUTGOING, "kind", "outgoingconnection")) == [
        f'{A}:2:7: error: kind: unknown kind "outgoingconnection"; expected OutgoingConnection '
        'or IncomingConnection; did you mean "OutgoingConnection"?'
    ]


def test_missing_kind(config: ConfigDir) -> None:
    assert only(config, drop_field(OUTGOING, "kind")) == [
        f"{A}:1:1: error: kind: is required (add kind: OutgoingConnection or IncomingConnection)"
    ]


def test_unknown_api_version(config: ConfigDir) -> None:
    assert only(config, set_field(OUTGOING, "apiVersion", "erelease/v2")) == [
        f'{A}:1:13: error: apiVersion: unsupported apiVersion "erelease/v2"; expected "erelease/v1"'
    ]


def test_document_that_is_not_a_mapping(config: ConfigDir) -> None:
    assert only(config, "- a\n- b\n") == [
        f"{A}:1:1: error: a connection must be a mapping with apiVersion, kind, metadata and "
        "spec, not a list"
    ]


def test_duplicate_name_across_files_points_at_the_first(config: ConfigDir) -> None:
    config.write("a.yaml", OUTGOING)
    config.write("sub/b.yaml", "# the same vendor again\n" + OUTGOING)
    result = config.load()
    assert [d.format() for d in result.diagnostics] == [
        "connections.d/sub/b.yaml:5:9: error: metadata.name: duplicate OutgoingConnection "
        'name "parchment"; first defined at connections.d/a.yaml:4:9'
    ]
    assert [c.file for c in result.connections] == [A]


def test_same_name_in_different_kinds_is_fine(config: ConfigDir) -> None:
    config.write("a.yaml", OUTGOING)
    config.write("b.yaml", set_field(INCOMING, "name", "parchment"))
    assert config.lines() == []


def test_server_with_a_path(config: ConfigDir) -> None:
    text = set_field(OUTGOING, "authServer", "https://int-api.parchment.example/oauth")
    assert only(config, text) == [
        f"{A}:6:15: error: spec.authServer: must not have a path; put the path in authPath"
    ]
    text = set_field(OUTGOING, "uploadServer", "https://int-api.parchment.example/up")
    assert only(config, text) == [
        f"{A}:8:17: error: spec.uploadServer: must not have a path; put the path in uploadPath"
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://x.example?a=1", "must not have a query (?…); it is scheme://host[:port] only"),
        ("https://x.example#top", "must not have a fragment (#…); it is scheme://host[:port] only"),
        ("ftp://x.example", 'the scheme "ftp" is not supported; use https://'),
        ("x.example", "must be scheme://host[:port], e.g. https://api.vendor.example"),
        ("https://x.example:99999", "has an invalid port; it must be 1 to 65535"),
        ("https://bad_host-.example", "has an invalid host name"),
        ("https://", "has no host name"),
        ("https://[::1", "has an invalid IPv6 address"),
    ],
)
def test_server_url_rules(config: ConfigDir, url: str, message: str) -> None:
    assert only(config, set_field(OUTGOING, "authServer", f'"{url}"')) == [
        f"{A}:6:15: error: spec.authServer: {message}"
    ]


def test_userinfo_in_a_server_is_refused_without_echoing_it(config: ConfigDir, canary: str) -> None:
    lines = only(config, set_field(OUTGOING, "authServer", f"https://admin:{canary}@x.example"))
    assert lines == [
        f"{A}:6:15: error: spec.authServer: must not contain a user name or password "
        "(user:pass@); the vendor's credentials belong in consumerKey, consumerSecret, "
        "username and password"
    ]
    assert canary not in "".join(lines)


def test_every_problem_of_a_server_url_is_reported(config: ConfigDir, canary: str) -> None:
    url = f"http://admin:{canary}@int-api.parchment.example/oauth"
    lines = only(config, set_field(OUTGOING, "authServer", url))
    where = f"{A}:6:15: error: spec.authServer:"
    assert lines == [
        f"{where} http:// is refused; use https://, or set allowInsecureHttp: true "
        "(for a local test server only)",
        f"{where} must not contain a user name or password (user:pass@); the vendor's "
        "credentials belong in consumerKey, consumerSecret, username and password",
        f"{where} must not have a path; put the path in authPath",
    ]
    assert canary not in "".join(lines)


@pytest.mark.parametrize(
    ("url", "messages"),
    [
        (
            "https://x.example:0/up?a=1#top",
            [
                "has an invalid port; it must be 1 to 65535",
                "must not have a fragment (#…); it is scheme://host[:port] only",
                "must not have a path; put the path in uploadPath",
                "must not have a query (?…); it is scheme://host[:port] only",
            ],
        ),
        (
            "ftp://bad_host-.example/up",
            [
                "has an invalid host name",
                "must not have a path; put the path in uploadPath",
                'the scheme "ftp" is not supported; use https://',
            ],
        ),
        (
            "https://[::1/up",
            ["has an invalid IPv6 address", "must not have a path; put the path in uploadPath"],
        ),
        (
            "https://x.example?#",
            [
                "must not have a fragment (#…); it is scheme://host[:port] only",
                "must not have a query (?…); it is scheme://host[:port] only",
            ],
        ),
    ],
)
def test_server_url_problems_are_all_reported(
    config: ConfigDir, url: str, messages: list[str]
) -> None:
    assert only(config, set_field(OUTGOING, "uploadServer", f'"{url}"')) == [
        f"{A}:8:17: error: spec.uploadServer: {message}" for message in messages
    ]


def test_every_problem_of_a_path_is_reported(config: ConfigDir) -> None:
    assert only(config, set_field(OUTGOING, "authPath", '"/oauth token#x"')) == [
        f"{A}:7:13: error: spec.authPath: must not contain a fragment (#)",
        f"{A}:7:13: error: spec.authPath: must not contain spaces or line breaks",
    ]


def test_http_is_refused_without_allow_insecure_http(config: ConfigDir) -> None:
    assert only(config, set_field(OUTGOING, "authServer", "http://int-api.parchment.example")) == [
        f"{A}:6:15: error: spec.authServer: http:// is refused; use https://, or set "
        "allowInsecureHttp: true (for a local test server only)"
    ]


def test_http_to_a_remote_host_with_allow_insecure_http_warns(config: ConfigDir) -> None:
    text = set_field(OUTGOING, "authServer", "http://int-api.parchment.example")
    config.write("a.yaml", text + "  allowInsecureHttp: true\n")
    result = config.load()
    assert [d.format() for d in result.diagnostics] == [
        f"{A}:6:15: warning: spec.authServer: uses http://: credentials cross the network "
        "unencrypted"
    ]
    assert result.ok
    assert result.connections[0].spec["authServer"] == "http://int-api.parchment.example"


def test_http_to_loopback_with_allow_insecure_http_is_quiet(config: ConfigDir) -> None:
    text = set_field(OUTGOING, "authServer", "http://127.0.0.1:8443")
    text = set_field(text, "uploadServer", "http://localhost:8443")
    config.write(
        "a.yaml",
        text.replace("uploadPort: 443", "uploadPort: 8443") + "  allowInsecureHttp: true\n",
    )
    result = config.load()
    assert result.diagnostics == []
    spec = result.connections[0].spec
    assert (spec["authServer"], spec["uploadServer"]) == (
        "http://127.0.0.1:8443",
        "http://localhost:8443",
    )


def test_upload_port_must_agree_with_a_port_in_upload_server(config: ConfigDir) -> None:
    text = set_field(OUTGOING, "uploadServer", "https://up.example:8443")
    assert only(config, text) == [
        f"{A}:9:15: error: spec.uploadPort: is 443 but uploadServer names port 8443; "
        "give the port only in uploadPort"
    ]


def test_plain_secret_is_refused_without_echoing_it(config: ConfigDir, canary: str) -> None:
    lines = only(config, set_field(OUTGOING, "consumerSecret", canary))
    assert lines == [
        f"{A}:12:19: error: spec.consumerSecret: must be a secret reference like "
        "ref+vault://<mount>/<path>#<key>; a plain value is not allowed here: move it into "
        "Vault and reference it"
    ]
    assert canary not in "".join(lines)


@pytest.mark.parametrize("value", ["yes", "12345", "null", "[a, b]", '"ref+sops://x#y"'])
def test_password_that_is_not_a_reference(config: ConfigDir, value: str) -> None:
    lines = only(config, set_field(OUTGOING, "password", value))
    assert len(lines) == 1
    assert lines[0].startswith(f"{A}:14:13: error: spec.password: ")
    if value == "null":
        assert lines[0].endswith(
            "has no value; expected a secret reference like ref+vault://<mount>/<path>#<key>"
        )
    else:
        assert "a plain value is not allowed here" in lines[0]
        assert value.strip('"') not in lines[0].split("spec.password:")[1]


def test_reference_without_key(config: ConfigDir) -> None:
    text = set_field(OUTGOING, "consumerSecret", "ref+vault://secret/erelease/parchment")
    assert only(config, text) == [
        f"{A}:12:19: error: spec.consumerSecret: invalid secret reference: a reference to a "
        "single value needs #<key> after the path"
    ]


def test_reference_with_auth_parameters(config: ConfigDir) -> None:
    text = set_field(OUTGOING, "password", "ref+vault://secret/erelease/p#password?token=abc")
    assert only(config, text) == [
        f"{A}:14:13: error: spec.password: invalid secret reference: authentication "
        "parameters are not allowed in a reference (token); configure Vault auth in "
        "erelease.yaml or the environment"
    ]


def test_reference_with_spaces(config: ConfigDir) -> None:
    text = set_field(OUTGOING, "password", '"ref+vault://secret/erelease/p#password\\n"')
    assert only(config, text) == [
        f"{A}:14:13: error: spec.password: invalid secret reference: it must not contain "
        "spaces or line breaks"
    ]


def test_openbao_reference_and_version(config: ConfigDir) -> None:
    text = set_field(OUTGOING, "password", "ref+openbao://kv/erelease/p?version=3#password")
    config.write("a.yaml", text)
    result = config.load()
    assert result.diagnostics == []
    assert result.connections[0].spec["password"] == SecretRef("kv", "erelease/p", "password", 3)


def test_any_other_spec_string_may_be_a_reference(config: ConfigDir) -> None:
    text = set_field(OUTGOING, "consumerKey", "ref+vault://secret/erelease/parchment#key")
    text = set_field(text, "authServer", "ref+vault://secret/erelease/parchment#auth_server")
    config.write("a.yaml", text)
    result = config.load()
    assert result.diagnostics == []
    spec = result.connections[0].spec
    assert spec["consumerKey"] == SecretRef("secret", "erelease/parchment", "key")
    assert spec["authServer"] == SecretRef("secret", "erelease/parchment", "auth_server")


def test_unsupported_reference_scheme(config: ConfigDir) -> None:
    assert only(config, set_field(OUTGOING, "consumerKey", "ref+sops://secrets.yaml#key")) == [
        f"{A}:11:16: error: spec.consumerKey: only ref+vault:// and ref+openbao:// secret "
        "references are supported"
    ]


def test_metadata_may_not_hold_references(config: ConfigDir) -> None:
    text = OUTGOING.replace(
        "  name: parchment\n", "  name: parchment\n  labels: {vendor: ref+vault://s/p#k}\n"
    )
    assert only(config, text) == [
        f"{A}:5:20: error: metadata.labels.vendor: secret references are not allowed in metadata"
    ]
    assert only(config, set_field(OUTGOING, "name", "ref+vault://s/p#k")) == [
        f"{A}:4:9: error: metadata.name: secret references are not allowed in metadata"
    ]


def test_credentials_must_be_a_reference(config: ConfigDir, canary: str) -> None:
    lines = only(config, set_field(INCOMING, "credentials", canary))
    assert lines == [
        f"{A}:6:16: error: spec.credentials: must be a secret reference like "
        "ref+vault://<mount>/<path>; a plain value is not allowed here: move it into "
        "Vault and reference it"
    ]


def test_credentials_name_a_whole_secret(config: ConfigDir) -> None:
    text = set_field(INCOMING, "credentials", "ref+vault://secret/erelease/incoming/cfnc#id")
    assert only(config, text) == [
        f"{A}:6:16: error: spec.credentials: must name a whole secret, without #key: erelease "
        "writes client_id and client_secret into it"
    ]


def test_credentials_do_not_pin_a_version(config: ConfigDir) -> None:
    text = set_field(INCOMING, "credentials", "ref+vault://secret/erelease/in/cfnc?version=2")
    assert only(config, text) == [
        f"{A}:6:16: error: spec.credentials: must not pin a ?version: erelease writes new "
        "versions there"
    ]


def test_rotation_is_a_non_negative_integer(config: ConfigDir) -> None:
    assert only(config, INCOMING + "  rotation: -1\n") == [
        f"{A}:7:13: error: spec.rotation: must be ≥ 0"
    ]
    assert only(config, INCOMING + "  rotation: 1.5\n") == [
        f"{A}:7:13: error: spec.rotation: must be an integer, not a number"
    ]


def test_app_name_goes_into_a_url(config: ConfigDir) -> None:
    assert only(config, INCOMING + '  appName: "int NC"\n') == [
        f"{A}:7:12: error: spec.appName: must be letters, digits, '.', '_', '~' or '-' "
        "(it goes into the Token URL)"
    ]


def test_every_problem_is_reported_at_once(config: ConfigDir) -> None:
    text = set_field(OUTGOING, "uploadPort", "70000")
    text = set_field(text, "authServer", "http://x.example")
    text = set_field(text, "password", "hunter2")
    text = set_field(text, "name", "Bad_Name")
    assert [line.split(": error: ")[1].split(":")[0] for line in only(config, text)] == [
        "metadata.name",
        "spec.authServer",
        "spec.uploadPort",
        "spec.password",
    ]


def test_labels_keys_and_values(config: ConfigDir) -> None:
    text = OUTGOING.replace(
        "  name: parchment\n",
        '  name: parchment\n  labels: {"-bad": x, ok: 5, long: ' + "y" * 300 + "}\n",
    )
    assert only(config, text) == [
        f"{A}:5:12: error: metadata.labels.-bad: a label key must be letters, digits, '.', '_', "
        "'/' or '-', starting and ending with a letter or digit",
        f'{A}:5:27: error: metadata.labels.ok: "5" is read as the number 5 in YAML; quote it: "5"',
        f"{A}:5:36: error: metadata.labels.long: must be at most 253 characters long (it has 300)",
    ]


def test_app_name_cannot_be_a_reference(config: ConfigDir) -> None:
    text = INCOMING + "  appName: ref+vault://secret/x#app\n"
    assert only(config, text) == [
        f"{A}:7:12: error: spec.appName: is part of the Token URL; write it as plain text"
    ]
