"""The sandbox signs webhooks exactly as HubSpot does: its published test vectors (reference §4.3)."""

from __future__ import annotations

import pytest

from airflow_provider_mlconn.sandbox import cli
from airflow_provider_mlconn.sandbox.hubspot import app_from_args, signatures

pytestmark = pytest.mark.unit

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
URI = "https://www.example.com/webhook_uri"


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1693657560000, "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="),
        (1700000300000, "RnbPH7+UMKVkbV32P8bz450N4M56aPmcru1+D3kSDtw="),
    ],
)
def test_v3_signatures_match_hubspots_test_vectors(timestamp: int, expected: str) -> None:
    body = b"{'example_field':'example_value'}"
    assert signatures.v3(SECRET, "POST", URI, body, timestamp) == expected


def test_v2_and_v1_signatures_match_hubspots_test_vectors() -> None:
    assert (
        signatures.v2(SECRET, "POST", URI, b'{"example_field":"example_value"}')
        == "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
    )
    assert signatures.v2(SECRET, "GET", URI, b"") == (
        "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
    )
    body = (
        b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
        b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
        b'"changeFlag":"NEW","appId":54321}]'
    )
    assert signatures.v1(SECRET, body) == "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"


def test_the_v3_uri_decodes_only_the_listed_escapes_and_keeps_the_query() -> None:
    uri = "https://hooks.test/a%3Ab%2fc?x=%40y%20z&q=%3F"
    assert signatures.signing_uri(uri) == "https://hooks.test/a:b/c?x=@y%20z&q=?"
    decoded = signatures.v3(SECRET, "POST", "https://hooks.test/a:b", b"[]", 1)
    assert signatures.v3(SECRET, "POST", "https://hooks.test/a%3Ab", b"[]", 1) == decoded


def test_a_delivery_carries_v3_and_v1_or_v2_headers() -> None:
    v1 = signatures.headers(SECRET, URI, b"[]", 1700000300000)
    assert v1["X-HubSpot-Signature-Version"] == "v1"
    assert v1["X-HubSpot-Signature"] == signatures.v1(SECRET, b"[]")
    assert v1["X-HubSpot-Request-Timestamp"] == "1700000300000"
    assert v1["X-HubSpot-Signature-v3"] == signatures.v3(SECRET, "POST", URI, b"[]", 1700000300000)
    v2 = signatures.headers(SECRET, URI, b"[]", 1, legacy_version="v2")
    assert v2["X-HubSpot-Signature"] == signatures.v2(SECRET, "POST", URI, b"[]")


def test_the_official_sdk_accepts_the_sandbox_signatures() -> None:
    sdk = pytest.importorskip("hubspot.utils.signature")
    body = '[{"eventId":7}]'
    timestamp = 1700000300000
    headers = signatures.headers(SECRET, URI, body.encode(), timestamp)
    assert sdk.Signature.is_valid(
        signature=headers["X-HubSpot-Signature"],
        client_secret=SECRET,
        request_body=body,
        signature_version="v1",
    )
    assert (
        sdk.Signature.get_signature(
            client_secret=SECRET,
            request_body=body,
            signature_version="v3",
            http_uri=URI,
            http_method="POST",
            timestamp=timestamp,
        )
        == headers["X-HubSpot-Signature-v3"]
    )


def test_the_cli_sets_the_payment_switch_and_the_webhook_options() -> None:
    args = cli.build_parser().parse_args(
        [
            "hubspot",
            "--no-api-payments-update-invoices",
            "--webhook-batch-delay-ms",
            "20",
            "--webhook-backoff-scale",
            "0.01",
            "--webhook-max-retries",
            "3",
            "--webhook-timeout",
            "2.5",
        ]
    )
    settings = app_from_args(args).state.sandbox.settings
    assert settings.api_payments_update_invoices is False
    assert (settings.webhook_batch_delay_ms, settings.webhook_backoff_scale) == (20, 0.01)
    assert (settings.webhook_max_retries, settings.webhook_timeout_s) == (3, 2.5)
    defaults = app_from_args(cli.build_parser().parse_args(["hubspot"])).state.sandbox.settings
    assert defaults.api_payments_update_invoices is True and defaults.webhook_max_retries == 10
