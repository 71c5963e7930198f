"""The store itself: encryption at rest, staging idempotency, claims, migrations, settings."""

from __future__ import annotations

import importlib
import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from airflow_provider_mlconn.sync import engine
from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.errors import StoreConfigurationError
from airflow_provider_mlconn.sync.flow import RecordStatus, Rejection
from airflow_provider_mlconn.sync.schema import LATEST_VERSION, MIGRATIONS, applied_version
from airflow_provider_mlconn.sync.store import MappingResult, OutcomeRow, RunRef, Store, store_settings
from tests.support.sync import T0, DictVariables, ToyWorld, actor_for, make_toy_flow, with_entity

pytestmark = pytest.mark.unit

EMAIL = "alice.customer@example.com"
RUN = RunRef("flow", "dag", "run1")
records_module = importlib.import_module("airflow_provider_mlconn.sync.store.records")


def raw_bytes(database: Path) -> bytes:
    # WAL mode: recent pages live in the -wal file until a checkpoint, so read both.
    return b"".join(
        path.read_bytes() for path in (database, database.with_name(database.name + "-wal")) if path.exists()
    )


def test_customer_email_is_not_in_the_raw_database_file(tmp_path, fernet_key):
    database = tmp_path / "store.db"
    store = Store(f"sqlite:///{database}", PayloadCipher(fernet_key))
    world = ToyWorld()
    world.company("C1", "Acme", T0)
    world.contact("KEY-IN-CLEAR-4242", "C1", EMAIL, T0)
    world.contact("P2", "C1", "bob at example.com", T0)
    flow = make_toy_flow("at_rest", world)
    info = engine.RunInfo(dag_id="dag", run_id="run1", data_interval_end=T0 + timedelta(hours=1))
    plan = engine.plan_windows(flow, info, DictVariables(), now=T0 + timedelta(hours=1))
    engine.extract(flow, store, info, actor_for(RUN, "extract"), plan)
    engine.map_records(flow, store, "dag/run1", actor_for(RUN, "map"))
    contact = next(r for r in store.records.of_run("dag/run1") if r.key == "KEY-IN-CLEAR-4242")
    store.claims.save_outcomes(
        store.claims.claim(owner="x", ids=[contact.id]),
        [OutcomeRow(contact.id, RecordStatus.FAILED, True, error=f"HTTP 400: {EMAIL} is invalid")],
        actor_for(RUN, "load"),
        action="load",
    )

    raw = raw_bytes(database)
    assert b"KEY-IN-CLEAR-4242" in raw  # the check does see clear text: keys are stored clear
    assert EMAIL.encode() not in raw
    assert b"alice.customer" not in raw
    assert b"bob at example.com" not in raw
    decrypted = next(r for r in store.records.of_run("dag/run1") if r.key == "KEY-IN-CLEAR-4242")
    assert decrypted.source["email"] == EMAIL
    assert decrypted.payload == {"email": EMAIL, "jde_contact": "KEY-IN-CLEAR-4242"}
    assert decrypted.error == f"HTTP 400: {EMAIL} is invalid"
    [(_, events)] = store.audit.history(flow="at_rest", entity="contact", key="KEY-IN-CLEAR-4242")
    assert events[-1].error == f"HTTP 400: {EMAIL} is invalid"
    rejected = next(r for r in store.records.of_run("dag/run1") if r.key == "P2")
    assert "bob at example.com" in (rejected.error or "")
    store.dispose()


def test_payload_hashes_are_keyed_so_equal_payloads_match_only_under_the_same_key(fernet_key):
    from cryptography.fernet import Fernet

    one, other = PayloadCipher(fernet_key), PayloadCipher(Fernet.generate_key().decode())
    payload = {"email": EMAIL}
    assert one.digest(payload) == one.digest({"email": EMAIL})
    assert one.digest(payload) != other.digest(payload)
    assert one.decrypt(one.encrypt(payload)) == payload


def test_rotated_keys_still_decrypt_old_payloads(tmp_path, fernet_key):
    from cryptography.fernet import Fernet

    old = PayloadCipher(fernet_key)
    token = old.encrypt({"n": 1})
    rotated = PayloadCipher(f"{Fernet.generate_key().decode()},{fernet_key}")
    assert rotated.decrypt(token) == {"n": 1}
    with pytest.raises(StoreConfigurationError, match="rotated"):
        PayloadCipher(Fernet.generate_key().decode()).decrypt(token)


def test_fernet_tokens_of_earlier_releases_still_decrypt_and_new_tokens_are_sealed(fernet_key):
    from cryptography.fernet import Fernet

    from airflow_provider_mlconn.sync.crypto import TOKEN_PREFIX

    cipher = PayloadCipher(fernet_key)
    legacy = Fernet(fernet_key.encode()).encrypt(json.dumps({"email": EMAIL}).encode()).decode()
    assert cipher.decrypt(legacy) == {"email": EMAIL}
    token = cipher.encrypt({"email": EMAIL})
    assert token.startswith(TOKEN_PREFIX)
    assert EMAIL not in token
    assert cipher.encrypt({"email": EMAIL}) != token  # a fresh nonce per value


def test_a_forked_child_never_seals_with_its_parents_nonces(fernet_key):
    import os

    from airflow_provider_mlconn.sync.crypto import _NONCES

    _NONCES.take()  # the parent's pool is filled
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, _NONCES.take())
        os._exit(0)
    os.waitpid(child, 0)
    from_child = os.read(read, 12)
    assert from_child != _NONCES.take()
    assert all(from_child != _NONCES.take() for _ in range(4096))


def test_payload_hashes_are_those_of_earlier_releases_whatever_the_values(fernet_key):
    import hashlib
    import hmac
    from datetime import date, datetime, timezone
    from decimal import Decimal

    cipher = PayloadCipher(fernet_key)
    key = hashlib.sha256(b"mlconn payload hash\x00" + fernet_key.encode()).digest()
    payloads = [
        {"name": "Zürich AG", "n": 1, "ok": True, "none": None, "list": [1, "two"]},
        {"tiny": 1e-05, "big": 1e16, "plain": 12.5, "limit": 0.0001, "text": "e-mail 3e5"},
        {
            "amount": Decimal("12.50"),
            "day": date(2026, 1, 2),
            "at": datetime(2026, 1, 2, tzinfo=timezone.utc),
        },
        {"huge": 2**70, "controls": 'tab\tquote"\u2028\x01'},
        {},
        {"long": "x" * 10_000},
    ]
    for payload in payloads:
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        if "at" in payload:
            text = text.replace("2026-01-02 00:00:00+00:00", "2026-01-02T00:00:00+00:00")
        assert cipher.digest(payload) == hmac.new(key, text.encode(), hashlib.sha256).hexdigest(), payload


def test_migrations_run_once_on_first_use_and_opening_again_is_a_no_op(tmp_path, fernet_key):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first = Store(url, PayloadCipher(fernet_key))
    second = Store(url, PayloadCipher(fernet_key))
    with second.engine.connect() as connection:
        assert applied_version(connection) == LATEST_VERSION
        versions = connection.execute(sa.text("SELECT count(*) FROM mlconn_schema_migrations")).scalar()
    assert versions == len(MIGRATIONS)
    assert sa.inspect(second.engine).has_table("mlconn_id_map")
    first.dispose()
    second.dispose()


def test_sqlite_store_runs_in_wal_mode(sqlite_store):
    with sqlite_store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_staging_the_same_payload_twice_is_a_no_op_and_a_changed_one_is_staged_again(sqlite_store):
    writer = sqlite_store.staging_writer(RUN, actor_for(RUN, "extract"), entities=["company"])
    writer.stage("company", 1, {"name": "Acme"})
    writer.stage("company", "1", {"name": "Acme"})
    writer.stage("company", 2, {"name": "Beta"})
    writer.flush()
    writer.stage("company", 1, {"name": "Acme"})
    writer.stage("company", 2, {"name": "Beta GmbH"})
    writer.flush()
    assert (writer.counts.new, writer.counts.same, writer.counts.changed) == (2, 1, 1)
    records = sqlite_store.records.of_run(RUN.run_key)
    assert [(r.key, r.source) for r in records] == [("1", {"name": "Acme"}), ("2", {"name": "Beta GmbH"})]
    # The writer took its keys for new until the second flush met them: nothing of that first try
    # is left (one row per key; a stage event per version staged).
    events = sqlite_store.audit.events_of([r.id for r in records])
    assert [len(events[r.id]) for r in records] == [1, 2]


def test_a_chunk_is_stored_entity_by_entity_in_the_order_the_source_gave_each(sqlite_store):
    # A customer's company and contacts come interleaved; a load writes one entity's outcomes, and
    # those should rewrite neighbouring rows, not one page per record.
    writer = sqlite_store.staging_writer(RUN, actor_for(RUN, "extract"), entities=["company", "contact"])
    for customer in (3, 1, 2):
        writer.stage("company", customer, {"name": f"C{customer}"})
        writer.stage("contact", f"{customer}-1", {"company": customer})
        writer.stage("contact", f"{customer}-2", {"company": customer})
    writer.flush()
    by_id = sorted(sqlite_store.records.of_run(RUN.run_key), key=lambda r: r.id)
    assert [(r.entity, r.key) for r in by_id] == [
        ("company", "3"),
        ("company", "1"),
        ("company", "2"),
        ("contact", "3-1"),
        ("contact", "3-2"),
        ("contact", "1-1"),
        ("contact", "1-2"),
        ("contact", "2-1"),
        ("contact", "2-2"),
    ]
    assert [r.id for r in by_id] == list(range(by_id[0].id, by_id[0].id + 9))  # no gaps
    events = sqlite_store.audit.events_of([r.id for r in by_id])
    assert all(len(events[r.id]) == 1 for r in by_id)  # each its own stage event


def test_staging_an_undeclared_entity_or_a_non_mapping_says_what_is_wrong(sqlite_store):
    writer = sqlite_store.staging_writer(RUN, actor_for(RUN, "extract"), entities=["company"])
    with pytest.raises(TypeError, match="extract staged entity 'invoice'"):
        writer.stage("invoice", 1, {})
    with pytest.raises(TypeError, match="payload must be a mapping"):
        writer.stage("company", 1, ["not", "a", "mapping"])  # type: ignore[arg-type]


def stage_mapped(store: Store, count: int) -> list[int]:
    writer = store.staging_writer(RUN, actor_for(RUN, "extract"), entities=["company"])
    for number in range(count):
        writer.stage("company", number, {"n": number})
    writer.flush()
    records = store.records.of_run(RUN.run_key)
    store.records.save_mapping(
        [
            MappingResult(r.id, RecordStatus.MAPPED, 0, payload={"n": r.key}, payload_hash="h")
            for r in records
        ],
        actor_for(RUN, "map"),
    )
    store.records.save_order([(r.id, 0, []) for r in records])
    return [r.id for r in records]


def claimed(store: Store, token: str) -> list[str]:
    return [r.key for chunk in store.records.iter(claim_token=token) for r in chunk]


def test_a_claimed_record_is_not_claimed_by_another_owner_until_released(sqlite_store):
    stage_mapped(sqlite_store, 3)
    first = sqlite_store.claims.claim(owner="dag/run/company.load/0", run_key=RUN.run_key, batch=0)
    second = sqlite_store.claims.claim(owner="mlconn_replay/r/replay_records/-1", run_key=RUN.run_key)
    assert claimed(sqlite_store, first) == ["0", "1", "2"]
    assert claimed(sqlite_store, second) == []
    sqlite_store.claims.release(first)
    third = sqlite_store.claims.claim(owner="mlconn_replay/r/replay_records/-1", run_key=RUN.run_key)
    assert claimed(sqlite_store, third) == ["0", "1", "2"]


def test_a_later_try_of_the_same_task_takes_over_its_own_claims_at_once(sqlite_store):
    stage_mapped(sqlite_store, 2)
    owner = "dag/run/company.load/0"
    crashed_try = sqlite_store.claims.claim(owner=owner, run_key=RUN.run_key)
    retry = sqlite_store.claims.claim(owner=owner, run_key=RUN.run_key)
    assert claimed(sqlite_store, crashed_try) == []
    assert claimed(sqlite_store, retry) == ["0", "1"]


def test_a_claim_older_than_the_claim_timeout_is_taken_over(tmp_path, fernet_key):
    store = Store(f"sqlite:///{tmp_path / 's.db'}", PayloadCipher(fernet_key), claim_timeout=timedelta(0))
    stage_mapped(store, 1)
    dead = store.claims.claim(owner="worker-a", run_key=RUN.run_key)
    alive = store.claims.claim(owner="worker-b", run_key=RUN.run_key)
    assert claimed(store, dead) == []
    assert claimed(store, alive) == ["0"]
    store.dispose()


def test_an_outcome_is_not_written_by_a_worker_that_lost_its_claim(sqlite_store):
    [record_id] = stage_mapped(sqlite_store, 1)
    token = sqlite_store.claims.claim(owner="a", run_key=RUN.run_key)
    sqlite_store.claims.release(token)
    saved = sqlite_store.claims.save_outcomes(
        token,
        [OutcomeRow(record_id, RecordStatus.LOADED, True, "r-1", "created")],
        actor_for(RUN, "l"),
        action="load",
    )
    assert saved == 0
    assert sqlite_store.records.of_run(RUN.run_key)[0].status is RecordStatus.MAPPED


def test_outcomes_saved_from_the_claimed_records_skip_a_record_whose_claim_was_taken_over(
    tmp_path, fernet_key
):
    """The load saves outcomes from the records as it read them under its claim (no second read);
    when another worker took one of them over meanwhile, that outcome is not written (nor its event
    or id map entry) and the rest are, as with a fresh read."""
    store = Store(f"sqlite:///{tmp_path / 's.db'}", PayloadCipher(fernet_key), claim_timeout=timedelta(0))
    kept, taken = stage_mapped(store, 2)
    token = store.claims.claim(owner="worker-a", run_key=RUN.run_key)
    [records] = list(store.records.iter(claim_token=token))
    other = store.claims.claim(owner="worker-b", ids=[taken])  # worker-a presumed dead
    assert claimed(store, other) == ["1"]
    outcomes = [
        OutcomeRow(record.id, RecordStatus.LOADED, True, f"r-{record.key}", "created") for record in records
    ]
    saved = store.claims.save_outcomes(
        token, outcomes, actor_for(RUN, "load"), action="load", claimed={r.id: r for r in records}
    )
    assert saved == 1
    statuses = {r.id: r.status for r in store.records.of_run(RUN.run_key)}
    assert statuses == {kept: RecordStatus.LOADED, taken: RecordStatus.MAPPED}
    events = store.audit.events_of([kept, taken])
    assert [e.action for e in events[kept]][-1] == "load"
    assert "load" not in [e.action for e in events[taken]]
    assert set(store.id_map.entries(RUN.flow, "company", ["0", "1"])) == {"0"}
    # All still held: saved from the records as read, in one pass.
    token = store.claims.claim(owner="worker-b", ids=[taken])
    [records] = list(store.records.iter(claim_token=token))
    outcome = OutcomeRow(taken, RecordStatus.LOADED, True, "r-1", "created")
    saved = store.claims.save_outcomes(
        token, [outcome], actor_for(RUN, "load"), action="load", claimed={r.id: r for r in records}
    )
    assert saved == 1
    assert set(store.id_map.entries(RUN.flow, "company", ["0", "1"])) == {"0", "1"}
    store.dispose()


def test_the_id_map_keeps_the_newest_load_of_a_key(sqlite_store):
    runs = [RunRef("flow", "dag", "run1"), RunRef("flow", "dag", "run2")]
    ids = []
    for run in runs:
        writer = sqlite_store.staging_writer(run, actor_for(run, "extract"), entities=["company"])
        writer.stage("company", 7, {"name": run.run_id})
        writer.flush()
        [record] = sqlite_store.records.of_run(run.run_key)
        sqlite_store.records.save_mapping(
            [MappingResult(record.id, RecordStatus.MAPPED, 0, payload={}, payload_hash=run.run_id)],
            actor_for(run, "map"),
        )
        ids.append(record.id)
    older, newer = ids
    for record_id, remote_id in ((newer, "id-new"), (older, "id-old")):
        token = sqlite_store.claims.claim(owner="a", ids=[record_id])
        outcome = OutcomeRow(record_id, RecordStatus.LOADED, True, remote_id, "updated")
        sqlite_store.claims.save_outcomes(token, [outcome], actor_for(RUN, "load"), action="load")
    entry = sqlite_store.id_map.entries("flow", "company", ["7"])["7"]
    assert (entry.remote_id, entry.last_loaded_hash, entry.last_record_id) == ("id-new", "run2", newer)
    assert sqlite_store.id_map.source_key_for("flow", "company", "id-new") == "7"


def test_store_settings_come_from_the_connection_or_default_to_sqlite_under_airflow_home(
    monkeypatch, tmp_path, fernet_key
):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    default = store_settings(None, airflow_fernet_key=fernet_key)
    assert default.url == f"sqlite:///{tmp_path / 'mlconn' / 'store.db'}"
    explicit = SimpleNamespace(
        extra_dejson={"sqlalchemy_url": "postgresql://db/x", "fernet_key": "k"}, host=None
    )
    assert store_settings(explicit, airflow_fernet_key=fernet_key) == store_settings(
        explicit, airflow_fernet_key=None
    )
    assert store_settings(explicit, airflow_fernet_key=None).fernet_keys == "k"
    fields = SimpleNamespace(
        extra_dejson={}, host="db.internal", port=5433, login="sync", password="p@ss", schema="mlconn_store"
    )
    assert (
        store_settings(fields, airflow_fernet_key=fernet_key).url
        == "postgresql+psycopg2://sync:p%40ss@db.internal:5433/mlconn_store"
    )
    assert "p@ss" not in repr(store_settings(fields, airflow_fernet_key=fernet_key).fernet_keys)


def test_a_store_without_any_fernet_key_is_refused_with_where_to_set_one():
    with pytest.raises(StoreConfigurationError, match='extra "fernet_key" on the mlconn_store connection'):
        store_settings(None, airflow_fernet_key="")
    with pytest.raises(StoreConfigurationError, match="not a url-safe base64"):
        PayloadCipher("not-a-key")


def test_only_sqlite_and_postgresql_urls_are_accepted(fernet_key):
    with pytest.raises(StoreConfigurationError, match="SQLite and PostgreSQL"):
        Store("mysql://db/x", PayloadCipher(fernet_key))


def test_rejection_reason_from_a_load_keeps_the_record_out_of_retries(sqlite_store):
    world = ToyWorld()
    world.company("C1", "Acme", T0)
    flow = with_entity(
        make_toy_flow("load_rejects", world),
        "company",
        load=lambda records: {r.key: Rejection("name is taken") for r in records},
    )
    info = engine.RunInfo(dag_id="dag", run_id="run9", data_interval_end=T0 + timedelta(hours=1))
    run = info.ref(flow)
    plan = engine.plan_windows(flow, info, DictVariables(), now=T0 + timedelta(hours=1))
    engine.extract(flow, sqlite_store, info, actor_for(run, "extract"), plan)
    engine.map_records(flow, sqlite_store, run.run_key, actor_for(run, "map"))
    engine.order_entity(flow, sqlite_store, run, "company", max_map_length=10, actor=actor_for(run, "order"))
    manifest = engine.load_batch(
        flow, sqlite_store, run_key=run.run_key, entity_name="company", batch=0, actor=actor_for(run, "load")
    )
    assert manifest.rejected == 1
    assert json.loads(json.dumps(sqlite_store.runs.status_counts(run.run_key))) == {"rejected": 1}


def test_bulk_writes_store_times_as_sqlalchemy_does(sqlite_store):
    from datetime import datetime, timezone

    from airflow_provider_mlconn.sync.schema import runs
    from airflow_provider_mlconn.sync.store.bulk import insert_rows

    on_the_second = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    columns = ("run_key", "flow", "dag_id", "run_id", "created_at", "updated_at")
    with sqlite_store.engine.begin() as connection:
        insert_rows(connection, runs, columns, [("bulk", "f", "d", "r", on_the_second, on_the_second)])
        connection.execute(
            runs.insert().values(
                run_key="core",
                flow="f",
                dag_id="d",
                run_id="r2",
                created_at=on_the_second,
                updated_at=on_the_second,
            )
        )
    with sqlite_store.engine.connect() as connection:
        raw = dict(connection.exec_driver_sql("SELECT run_key, created_at FROM mlconn_runs").all())
        assert raw["bulk"] == raw["core"] == "2026-01-02 03:04:05.000000"
    assert sqlite_store.runs.get("bulk").created_at == on_the_second


def test_records_are_read_across_id_pages_in_id_order_with_only_the_matching_ones(sqlite_store, monkeypatch):
    # Ids come a page at a time from an index, rows by primary key: pages of 7 here, chunks of 3,
    # another run's rows in between, and statuses set between two chunks of the reading.
    monkeypatch.setattr(records_module, "ID_PAGE", 7)
    other = RunRef(RUN.flow, RUN.dag_id, "other-run")
    ours = sqlite_store.staging_writer(RUN, actor_for(RUN, "extract"), entities=["company"], chunk_size=1)
    theirs = sqlite_store.staging_writer(
        other, actor_for(other, "extract"), entities=["company"], chunk_size=1
    )
    for number in range(20):
        ours.stage("company", number, {"n": number})
        theirs.stage("company", number, {"n": number})
    ours.flush()
    theirs.flush()
    staged = sqlite_store.records.of_run(RUN.run_key)
    rejected = {r.id for r in staged if int(r.key) % 5 == 0}
    sqlite_store.records.save_mapping(
        [MappingResult(record_id, RecordStatus.REJECTED, 0, error="no name") for record_id in rejected],
        actor_for(RUN, "map"),
    )
    seen: list[list[str]] = []
    reading = sqlite_store.records.iter(run_key=RUN.run_key, statuses=(RecordStatus.STAGED,), chunk_size=3)
    seen.append([r.key for r in next(reading)])
    # Rejected meanwhile: a later chunk no longer holds it.
    sqlite_store.records.save_mapping(
        [MappingResult(next(r.id for r in staged if r.key == "19"), RecordStatus.REJECTED, 0, error="x")],
        actor_for(RUN, "map"),
    )
    seen.extend([r.key for r in chunk] for chunk in reading)
    keys = [key for chunk in seen for key in chunk]
    assert keys == [str(n) for n in range(19) if n % 5 != 0]
    assert all(len(chunk) <= 3 for chunk in seen)
