"""20,000 company upserts against the HubSpot sandbox at the default limit (190 requests per 10 s).

Side by side in one run, each against a freshly reset sandbox subprocess:

- HubSpotHook: batches of 100 from a pool of 8 threads, paced by its throttle;
- baseline: the official ``hubspot-api-client`` SDK sending the same batches one after another, with
  urllib3 retries on 429 as its README suggests (``allowed_methods=None`` so POSTs are retried too).

Reported: the achieved request rate divided by the allowed rate (190/10 s = 19/s; target >= 0.9) and
the 429s the sandbox served. Run again with 150 ms added latency, closer to HubSpot's real answer time.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from benchmarks.report import write_section

RECORDS = int(os.environ.get("MLCONN_BENCH_HUBSPOT_RECORDS", "20000"))
RATE_LIMIT = 190
TOKEN = "pat-na1-benchmark"
KEY = "jde_address_number"
LATENCIES_MS = (0, 150)


@dataclass
class Run:
    client: str
    latency_ms: int
    requests: int
    seconds: float
    served_429: int
    peak_window: int
    created: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def ratio(self) -> float:
        return self.rate / (RATE_LIMIT / 10)


def batches() -> list[list[tuple[str, dict[str, str]]]]:
    records = [
        (str(100_000 + i), {"name": f"Customer {i}", "city": "Rotterdam", "domain": f"c{i}.example.com"})
        for i in range(RECORDS)
    ]
    return [records[i : i + 100] for i in range(0, len(records), 100)]


def measure(url: str, client: str, latency_ms: int, prepare: Callable[[str], Callable[[], int]]) -> Run:
    """One run on a fresh portal holding only the unique key property; only ``send()`` is timed."""
    requests.post(f"{url}/_sandbox/reset", json={}, timeout=30).raise_for_status()
    requests.post(f"{url}/_sandbox/settings", json={"latency_ms": latency_ms}, timeout=30).raise_for_status()
    requests.post(
        f"{url}/crm/v3/properties/companies",
        json={
            "name": KEY,
            "label": "AN8",
            "type": "string",
            "fieldType": "text",
            "groupName": "companyinformation",
            "hasUniqueValue": True,
        },
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    ).raise_for_status()
    send = prepare(url)
    time.sleep(10.5)  # let the set-up calls age out of the rolling window: every run starts empty
    began = time.monotonic()
    created = send()
    seconds = time.monotonic() - began
    stats = requests.get(f"{url}/_sandbox/stats", timeout=30).json()
    upserts = stats["requests"].get("POST /crm/v3/objects/companies/batch/upsert", {})
    return Run(
        client=client,
        latency_ms=latency_ms,
        requests=sum(n for status, n in upserts.items() if status != "429"),
        seconds=seconds,
        served_429=stats["rate_limited"],
        peak_window=stats["peak_requests_in_10s"],
        created=created,
    )


def hook_client(url: str) -> Callable[[], int]:
    from airflow_provider_mlconn.hooks.hubspot import HubSpotHook

    conn_id = f"hubspot_bench_{time.monotonic_ns()}"
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
        {"conn_type": "hubspot", "host": url, "password": TOKEN, "extra": {"rate_limit_per_10s": RATE_LIMIT}}
    )
    hook = HubSpotHook(conn_id, max_workers=8)
    hook.get_conn()  # resolve the connection and open the session before the clock starts
    records = {key: props for batch in batches() for key, props in batch}

    def send() -> int:
        try:
            outcomes = hook.upsert_records("companies", records, id_property=KEY)
            return sum(o.ok for o in outcomes.values())
        finally:
            hook.close()

    return send


def sdk_client(url: str) -> Callable[[], int]:
    import hubspot
    from hubspot.crm.companies import (
        BatchInputSimplePublicObjectBatchInputUpsert,
        SimplePublicObjectBatchInputUpsert,
    )
    from urllib3.util.retry import Retry

    retry = Retry(total=50, backoff_factor=0.3, status_forcelist=(429,), allowed_methods=None)
    client = hubspot.Client.create(access_token=TOKEN, host=url, retry=retry)
    bodies = [
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[SimplePublicObjectBatchInputUpsert(id_property=KEY, id=k, properties=p) for k, p in batch]
        )
        for batch in batches()
    ]

    def send() -> int:
        created = 0
        for body in bodies:
            answer = client.crm.companies.batch_api.upsert(
                batch_input_simple_public_object_batch_input_upsert=body
            )
            created += len(answer.results)
        return created

    return send


def table(runs: list[Run]) -> str:
    lines = [
        "| client | added latency | upserts | requests | seconds | requests/s | rate / allowed (19/s) "
        "| 429s served | busiest 10 s window |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run.client} | {run.latency_ms} ms | {run.created:,} | {run.requests} | {run.seconds:.1f} "
            f"| {run.rate:.1f} | **{run.ratio:.2f}** | {run.served_429} | {run.peak_window} |"
        )
    return "\n".join(lines)


def main() -> None:
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="mlconn-bench-"))
    from airflow_provider_mlconn.sandbox.runner import SandboxProcess

    runs: list[Run] = []
    args = ["--token", TOKEN, "--rate-limit", str(RATE_LIMIT), "--search-lag-ms", "0"]
    with SandboxProcess("hubspot", args) as sandbox:
        for latency in LATENCIES_MS:
            for client, prepare in (
                ("HubSpotHook (8 threads, throttle)", hook_client),
                ("hubspot-api-client 12, sequential", sdk_client),
            ):
                run = measure(sandbox.url, client, latency, prepare)
                print(f"{client} latency={latency}ms: {run}", flush=True)
                runs.append(run)
    text = f"""## HubSpot upserts at the rate limit (`benchmarks/hubspot_upsert.py`)

{RECORDS:,} company upserts (batches of 100, upsert on `{KEY}`) against `mlconn-sandbox hubspot --rate-limit
{RATE_LIMIT}` in a subprocess, reset before each run. The hook and the official SDK (urllib3 `Retry` on 429,
backoff 0.3, POST allowed) send the same batches in the same run. "Rate / allowed" is upsert requests per
second over the whole run divided by 19/s; a rolling window lets the first 190 go at once, so a short run
at the limit can exceed 1.0. "Busiest 10 s window" is the most requests the sandbox admitted in 10 s.

{table(runs)}
"""
    write_section("hubspot_upsert", text)
    print(text)


if __name__ == "__main__":
    main()
