"""The AIS Server's REST surface (``/jderest/...``) over the in-memory store.

Status codes and bodies follow the reference (shared/reference/jde-ais.md): 403 for refused
credentials, 444 for an invalid, expired, logged-out or wrong-device token, 415 for a POST that is not
``application/json``, 400 for malformed JSON or a request the server cannot make sense of, 500 with a
``ServiceErrorResponse`` for server-side failures and failed orchestrations.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from airflow_provider_mlconn.sandbox.jde import orchestrations
from airflow_provider_mlconn.sandbox.jde.calendar import DATE_FORMATS, julian_to_ais
from airflow_provider_mlconn.sandbox.jde.schema import TableSchema
from airflow_provider_mlconn.sandbox.jde.seed import Dataset, Row
from airflow_provider_mlconn.sandbox.jde.sessions import Session, Sessions
from airflow_provider_mlconn.sandbox.jde.store import (
    Cursor,
    QueryContext,
    QueryError,
    Store,
    compile_query,
    parse_order_by,
)

ENVIRONMENTS = ("JDV920", "JPY920", "JPD920")
CAPABILITIES = (
    ("dataservice", "Data Service", "9.1.4"),
    ("dataServiceAggregation", "Data service aggregation", "9.2.0.2"),
    ("version2services", "Version 2 services", "9.2.1.2"),
    ("nextPage", "Next page processing", "9.2.1.2"),
    ("simpleGetServices", "Simple GET data services", "9.2.1.2"),
    ("formServiceOrderBy", "Form service order by", "9.2.1.2"),
    ("orchestrator", "Orchestrator", "9.2.1.0"),
)


@dataclass
class Options:
    username: str = "JDE"
    password: str = "JDE"
    token_ttl: float = 720 * 60.0
    session_timeout: float = 30 * 60.0
    cursor_timeout: float = 300.0
    customers: int = 2000
    seed: int = 42
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    timezone: str = "America/Chicago"
    date_format: str = "MDE"
    allow_basic_auth: bool = True
    duplicate_check: bool = True  # the orchestrations refuse an external reference that exists
    fault_after_commit_rate: float = 0.0  # orchestration calls that commit, then lose the response
    open_items: int | None = None  # every customer has exactly this many open invoices (benchmarks)


class AisError(Exception):
    """Answered as a ``ServiceErrorResponse`` with ``status``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message": message,
        "exception": "Exception",
        "timeStamp": datetime.now(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
        "status": "ERROR",
    }
    body.update(extra)
    return body


class Stats:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        self.orchestrations: Counter[str] = Counter()

    def snapshot(self, sessions: Sessions) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "tokens_issued": self.counters["tokens_issued"],
            "logins": self.counters["logins"],
            "login_failures": self.counters["login_failures"],
            "logouts": self.counters["logouts"],
            "invalid_token_rejections": self.counters["invalid_token"],
            "stateless_calls": self.counters["stateless_calls"],
            "sessions_active": sessions.active(),
            "cursors_open": sessions.open_cursors(),
            "cursors_lost": self.counters["cursors_lost"],
            "faults": {
                "errors": self.counters["fault_error"],
                "dropped_connections": self.counters["fault_drop"],
                "cursors_lost": self.counters["fault_cursor_lost"],
                "after_commit_dropped": self.counters["fault_after_commit_drop"],
                "after_commit_gateway_timeouts": self.counters["fault_after_commit_gateway"],
            },
            "rows_returned": self.counters["rows_returned"],
            "orchestrations": dict(sorted(self.orchestrations.items())),
        }


class Sandbox:
    """One sandbox's state: options, data, sessions and counters."""

    def __init__(self, options: Options) -> None:
        if options.date_format not in DATE_FORMATS:
            raise ValueError(f"date_format must be one of {sorted(DATE_FORMATS)}")
        for name in ("fault_rate", "fault_after_commit_rate"):
            if not 0.0 <= getattr(options, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        self.options = options
        self.zone = ZoneInfo(options.timezone)
        self.fault_random = random.Random(options.seed ^ 0x5EED)
        # its own generator, so switching it on does not move the --fault-rate sequence
        self.after_commit_random = random.Random(options.seed ^ 0xC0317)
        self.stats = Stats()
        self.sessions = Sessions(time_to_live=options.token_ttl, idle_timeout=options.session_timeout)
        self.store = Store(
            Dataset(customers=options.customers, seed=options.seed, open_items=options.open_items)
        )

    def reset(self, *, customers: int | None = None, seed: int | None = None) -> None:
        if customers is not None:
            self.options.customers = customers
        if seed is not None:
            self.options.seed = seed
        self.store = Store(
            Dataset(
                customers=self.options.customers, seed=self.options.seed, open_items=self.options.open_items
            )
        )
        self.sessions.clear()
        self.stats = Stats()

    def now(self) -> datetime:
        """The enterprise server's local time: UPMJ/UPMT are stamped with it."""
        return datetime.now(self.zone)

    @property
    def simple_date_format(self) -> str:
        return DATE_FORMATS[self.options.date_format]

    def lose_committed_response(self) -> str | None:
        """Whether this committed orchestration call loses its answer (``--fault-after-commit-rate``),
        and how: ``drop`` (the connection closes, no answer) or ``gateway`` (a 504 HTML page from the
        web tier in front of AIS)."""
        rate = self.options.fault_after_commit_rate
        if rate <= 0 or self.after_commit_random.random() >= rate:
            return None
        return "drop" if self.after_commit_random.random() < 0.5 else "gateway"


# -- request plumbing -------------------------------------------------------------------------------


async def read_json(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip() and (allow_empty or request.method == "GET"):
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if (
        request.method == "POST"
        and content_type != "application/json"
        and not (allow_empty and not raw.strip())
    ):
        raise AisError(415, "Invalid Content-Type header; application/json is required")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise AisError(400, "Bad Request - invalid JSON input") from None
    if not isinstance(body, dict):
        raise AisError(400, "Bad Request - the JSON input must be an object")
    return body


def basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        username, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return username, password


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def check_credentials(sandbox: Sandbox, username: str, password: str) -> bool:
    ok_user = secrets.compare_digest(username.strip().upper(), sandbox.options.username.upper())
    return ok_user and secrets.compare_digest(password, sandbox.options.password)


def login_environment(request: Request, body: dict[str, Any]) -> tuple[str, str]:
    environment = str(
        body.get("environment") or request.headers.get("jde-AIS-Auth-Environment") or ENVIRONMENTS[0]
    ).upper()
    role = str(body.get("role") or request.headers.get("jde-AIS-Auth-Role") or "*ALL").upper()
    if environment not in ENVIRONMENTS:
        raise AisError(403, f"Authorization Failure: environment {environment} is not available")
    return environment, role


def authenticate(
    sandbox: Sandbox, request: Request, body: dict[str, Any], *, token: str | None = None
) -> Session:
    """The caller's session: a token (header, or body ``token``), else per-request credentials (HTTP
    Basic or body ``username``/``password``), which open a temporary session for this call only."""
    token = request.headers.get("jde-AIS-Auth") or token or body.get("token")
    device = request.headers.get("jde-AIS-Auth-Device") or body.get("deviceName")
    if token:
        session, _why = sandbox.sessions.find(str(token), device=device, client_ip=client_ip(request))
        if session is None:
            sandbox.stats.counters["invalid_token"] += 1
            raise AisError(444, "Invalid Token")
        return session
    credentials = basic_credentials(request) if sandbox.options.allow_basic_auth else None
    if credentials is None and body.get("username") is not None:
        credentials = (str(body.get("username")), str(body.get("password") or ""))
    if credentials is None:
        raise AisError(403, "Authorization Failure: no token and no credentials")
    if not check_credentials(sandbox, *credentials):
        sandbox.stats.counters["login_failures"] += 1
        raise AisError(403, "Authorization Failure: invalid username or password")
    environment, role = login_environment(request, body)
    sandbox.stats.counters["stateless_calls"] += 1
    return sandbox.sessions.open(
        username=credentials[0].strip().upper(),
        environment=environment,
        role=role,
        device=device,
        client_ip=client_ip(request),
        stateless=True,
    )


def _offset(moment: datetime) -> str:
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# -- data service ---------------------------------------------------------------------------------------


def _formatters(schema: TableSchema, columns: list[str]) -> list[tuple[str, str, Callable[[Any], Any]]]:
    result = []
    for alias in columns:
        column = schema.columns[alias]
        if column.kind == "date":
            fmt: Callable[[Any], Any] = julian_to_ais
        elif column.kind == "num":
            scale = 10**column.size

            def fmt(value: Any, scale: int = scale) -> Any:
                return value / scale if scale != 1 else value
        else:

            def fmt(value: Any) -> Any:
                return value

        result.append((f"{schema.name}_{alias}", alias, fmt))
    return result


def grid_response(
    schema: TableSchema,
    columns: list[str],
    rows: list[Row],
    *,
    more: bool,
    grid_id: int,
    stack_id: int,
    state_id: int,
    rid: str,
    link: str | None,
) -> dict[str, Any]:
    formatters = _formatters(schema, columns)
    rowset = [{key: fmt(row[alias]) for key, alias, fmt in formatters} for row in rows]
    body: dict[str, Any] = {
        f"fs_DATABROWSE_{schema.name}": {
            "title": f"Data Browser - {schema.name} [{schema.title}]",
            "data": {
                "gridData": {
                    "id": grid_id,
                    "fullGridId": str(grid_id),
                    "columns": {key: schema.columns[alias].title for key, alias, _ in formatters},
                    "rowset": rowset,
                    "summary": {"records": len(rowset), "moreRecords": more},
                }
            },
            "errors": [],
            "warnings": [],
        },
        "stackId": stack_id,
        "stateId": state_id,
        "rid": rid,
        "currentApp": f"DATABROWSE_{schema.name}",
        "timeStamp": datetime.now().strftime("%Y-%m-%d:%H.%M.%S"),
        "sysErrors": [],
    }
    if link:
        body["links"] = [{"rel": "next", "href": link}]
    return body


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


def _page_size(value: Any) -> int | None:
    if value is None or str(value).strip() == "":
        return 100
    if str(value).strip().lower() == "no max":
        return None
    try:
        size = int(str(value).strip())
    except ValueError:
        raise AisError(400, f'maxPageSize must be a number of rows or "No Max", got {value!r}') from None
    if size <= 0:
        raise AisError(400, f"maxPageSize must be positive, got {value!r}")
    return size


def _columns(schema: TableSchema, value: Any) -> list[str]:
    if value is None or str(value).strip() == "":
        return list(schema.columns)
    columns = []
    for control_id in str(value).split("|"):
        table_name, _, alias = control_id.strip().partition(".")
        if table_name.upper() != schema.name or alias.upper() not in schema.columns:
            raise AisError(400, f"returnControlIDs: {control_id!r} is not a column of {schema.name}")
        if alias.upper() not in columns:
            columns.append(alias.upper())
    return columns


def _next_link(request: Request, session: Session, cursor: Cursor) -> str:
    base = str(request.base_url).rstrip("/")
    controls = "|".join(f"{cursor.table}.{c}" for c in cursor.columns)
    return (
        f"{base}/jderest/v2/dataservice/next?stackId={cursor.stack_id}&stateId={cursor.state_id}"
        f"&rid={cursor.rid}&fullGridId={cursor.grid_id}&formOID={cursor.table}"
        f"&token={quote(session.token, safe='')}&outputType=GRID_DATA"
        f"&returnControlIDs={quote(controls, safe='|.')}"
    )


def create_app(**overrides: Any) -> FastAPI:
    """The AIS sandbox as an ASGI app; keyword options as in ``Options``."""
    sandbox = Sandbox(Options(**overrides))
    app = FastAPI(title="JDE AIS Server sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sandbox = sandbox
    _quiet_dropped_connection_logs()

    @app.exception_handler(AisError)
    async def on_ais_error(request: Request, error: AisError) -> JSONResponse:
        return JSONResponse(error_body(error.message, **error.extra), status_code=error.status)

    # -- authentication ------------------------------------------------------------------------

    async def token_request(request: Request) -> JSONResponse:
        body = await read_json(request)
        credentials = basic_credentials(request)
        if body.get("username") is not None:
            credentials = (str(body["username"]), str(body.get("password") or ""))
        if credentials is None:
            raise AisError(403, "Authorization Failure: username and password are required")
        if not check_credentials(sandbox, *credentials):
            sandbox.stats.counters["login_failures"] += 1
            raise AisError(403, "Authorization Failure: invalid username or password")
        environment, role = login_environment(request, body)
        device = body.get("deviceName") or request.headers.get("jde-AIS-Auth-Device")
        username = credentials[0].strip().upper()
        session = sandbox.sessions.open(
            username=username,
            environment=environment,
            role=role,
            device=str(device) if device else None,
            client_ip=client_ip(request),
            stateless=False,
        )
        sandbox.stats.counters["logins"] += 1
        sandbox.stats.counters["tokens_issued"] += 1
        fmt = sandbox.options.date_format
        simple = DATE_FORMATS[fmt]
        return JSONResponse(
            {
                "username": username,
                "environment": environment,
                "role": role,
                "jasserver": "http://jas.sandbox.invalid:8080",
                "userInfo": {
                    "token": session.token,
                    "langPref": "E",
                    "locale": "en",
                    "dateFormat": fmt,
                    "dateSeperator": "/",
                    "simpleDateFormat": simple,
                    "timeFormat": "12",
                    "decimalFormat": ".",
                    "addressNumber": 6001,
                    "alphaName": f"{username.title()}, Integration User",
                    "appsRelease": "E920",
                    "country": " ",
                    "username": username,
                    "longUserId": f"{username.lower()}@sandbox.invalid",
                    "timeZoneOffset": _offset(sandbox.now()),
                    "dstRuleKey": "USA" if sandbox.options.timezone.startswith("America/") else "",
                },
                "userAuthorized": False,
                "version": None,
                "poStringJSON": None,
                "altPoStringJSON": None,
                "aisSessionCookie": f"{secrets.token_urlsafe(24)}!{int(time.time() * 1000)}",
                "adminAuthorized": False,
            }
        )

    async def validate(request: Request) -> JSONResponse:
        body = await read_json(request, allow_empty=True)
        token = request.headers.get("jde-AIS-Auth") or body.get("token")
        device = request.headers.get("jde-AIS-Auth-Device") or body.get("deviceName")
        session = None
        if token:
            previous = None
            candidate = sandbox.sessions._sessions.get(str(token))
            if candidate is not None:
                previous = candidate.last_used
            session, _ = sandbox.sessions.find(str(token), device=device, client_ip=client_ip(request))
            if session is not None and not _truthy(body.get("touch")) and previous is not None:
                session.last_used = previous  # only "touch" extends the idle timeout
        if session is None:
            sandbox.stats.counters["invalid_token"] += 1
            raise AisError(444, "Invalid Token")
        return JSONResponse({"isValidSession": True})

    async def logout(request: Request) -> JSONResponse:
        body = await read_json(request, allow_empty=True)
        token = request.headers.get("jde-AIS-Auth") or body.get("token")
        device = request.headers.get("jde-AIS-Auth-Device") or body.get("deviceName")
        session = None
        if token:
            session, _ = sandbox.sessions.find(str(token), device=device, client_ip=client_ip(request))
        if session is None:
            sandbox.stats.counters["invalid_token"] += 1
            raise AisError(444, "Invalid Token")
        sandbox.sessions.end(session.token)
        sandbox.stats.counters["logouts"] += 1
        return JSONResponse({"status": "Success"})

    for prefix in ("/jderest/v2", "/jderest"):
        app.add_api_route(f"{prefix}/tokenrequest", token_request, methods=["POST", "GET"])
        app.add_api_route(f"{prefix}/tokenrequest/validate", validate, methods=["POST"])
        app.add_api_route(f"{prefix}/tokenrequest/logout", logout, methods=["POST"])
    for prefix in ("/jderest/v3/orchestrator", "/jderest/v2/orchestrator", "/jderest/orchestrator"):
        app.add_api_route(f"{prefix}/jde-login", token_request, methods=["POST", "GET"])
        app.add_api_route(f"{prefix}/jde-validate-session", validate, methods=["POST", "GET"])
        app.add_api_route(f"{prefix}/jde-logout", logout, methods=["POST", "GET"])

    # -- data service ---------------------------------------------------------------------------

    def query_context(session: Session) -> QueryContext:
        return QueryContext(sandbox.simple_date_format, session.username, sandbox.now().date())

    @app.post("/jderest/v2/dataservice")
    async def dataservice(request: Request) -> JSONResponse:
        body = await read_json(request)
        session = authenticate(sandbox, request, body)
        target = body.get("targetName")
        if not target:
            raise AisError(400, "targetName is required")
        if str(body.get("targetType", "table")).lower() not in ("table", "view"):
            raise AisError(400, f"targetType must be table or view, got {body.get('targetType')!r}")
        try:
            table = sandbox.store.table(str(target))
            schema = table.schema
            service = str(body.get("dataServiceType", "BROWSE")).upper()
            if service not in ("BROWSE", "COUNT"):
                raise AisError(
                    400, f"dataServiceType {service} is not modelled by this sandbox (BROWSE, COUNT)"
                )
            compiled = compile_query(schema, body.get("query"), query_context(session))
            aggregation = body.get("aggregation") or {}
            order = parse_order_by(
                schema, aggregation.get("orderBy") if isinstance(aggregation, dict) else None
            )
        except QueryError as error:
            raise AisError(400, str(error)) from None
        if service == "COUNT":
            count = sum(1 for _ in sandbox.store.select(table, compiled, []))
            response = grid_response(
                schema, [], [], more=False, grid_id=0, stack_id=0, state_id=0, rid="", link=None
            )
            response["count"] = count
            return JSONResponse(response)
        columns = _columns(schema, body.get("returnControlIDs"))
        page_size = _page_size(body.get("maxPageSize"))
        stack_id = sandbox.sessions.next_stack_id()
        cursor = Cursor(
            stack_id=stack_id,
            state_id=1,
            rid=secrets.token_hex(8),
            table=schema.name,
            columns=columns,
            rows=sandbox.store.select(table, compiled, order),
            page_size=page_size,
            grid_id=stack_id,
            last_used=time.monotonic(),
        )
        page, more = cursor.take(page_size)
        sandbox.stats.counters["rows_returned"] += len(page)
        link = None
        if more and _truthy(body.get("enableNextPageProcessing")) and not session.stateless:
            cursor.state_id += 1
            session.cursors[stack_id] = cursor
            link = _next_link(request, session, cursor)
        return JSONResponse(
            grid_response(
                schema,
                columns,
                page,
                more=more,
                grid_id=cursor.grid_id,
                stack_id=stack_id,
                state_id=cursor.state_id,
                rid=cursor.rid,
                link=link,
            )
        )

    @app.api_route("/jderest/v2/dataservice/next", methods=["GET", "POST"])
    async def dataservice_next(request: Request) -> JSONResponse:
        body = await read_json(request, allow_empty=True)
        params = request.query_params
        session = authenticate(sandbox, request, body, token=params.get("token"))
        try:
            stack_id, state_id = int(params.get("stackId", "")), int(params.get("stateId", ""))
        except ValueError:
            raise AisError(400, "stackId and stateId are required") from None
        cursor = session.cursors.get(stack_id)
        now = time.monotonic()
        if cursor is not None and request.scope.get("sandbox.fault") == "lose_cursor":
            session.cursors.pop(stack_id, None)
            sandbox.stats.counters["fault_cursor_lost"] += 1
            raise AisError(500, "Server failed to process request: the result set was closed")
        if cursor is not None and now - cursor.last_used > sandbox.options.cursor_timeout:
            session.cursors.pop(stack_id, None)
            sandbox.stats.counters["cursors_lost"] += 1
            cursor = None
        if cursor is None or cursor.rid != params.get("rid", cursor.rid):
            raise AisError(500, "Server failed to process request: the result set is no longer available")
        if state_id != cursor.state_id:
            raise AisError(
                500,
                f"Server failed to process request: stale state {state_id}; "
                f"the result set is at {cursor.state_id}",
            )
        cursor.last_used = now
        page, more = cursor.take(cursor.page_size)
        sandbox.stats.counters["rows_returned"] += len(page)
        schema = sandbox.store.table(cursor.table).schema
        link = None
        cursor.state_id += 1
        if more:
            link = _next_link(request, session, cursor)
        else:
            session.cursors.pop(stack_id, None)
        return JSONResponse(
            grid_response(
                schema,
                cursor.columns,
                page,
                more=more,
                grid_id=cursor.grid_id,
                stack_id=stack_id,
                state_id=cursor.state_id,
                rid=cursor.rid,
                link=link,
            )
        )

    @app.get("/jderest/v2/dataservice/table/{table_name}")
    async def simple_table_query(request: Request, table_name: str) -> JSONResponse:
        params = request.query_params
        body: dict[str, Any] = {}
        if params.get("$username"):
            body = {"username": params.get("$username"), "password": params.get("$password", "")}
        session = authenticate(sandbox, request, body, token=params.get("$token"))
        operators = {
            "EQ": "EQUAL", "NE": "NOT_EQUAL", "LT": "LESS", "LE": "LESS_EQUAL", "GT": "GREATER",
            "GE": "GREATER_EQUAL", "STARTSWITH": "STR_START_WITH", "ENDSWITH": "STR_END_WITH",
            "CONTAINS": "STR_CONTAIN",
        }  # fmt: skip
        conditions = []
        for text in params.getlist("$filter"):
            parts = text.split(" ", 2)
            if len(parts) != 3 or parts[1].upper() not in operators:
                raise AisError(400, f"$filter {text!r} is not 'TABLE.ALIAS OP value'")
            conditions.append(
                {"controlId": parts[0], "operator": operators[parts[1].upper()],
                 "value": [{"specialValueId": "LITERAL", "content": parts[2]}]}
            )  # fmt: skip
        try:
            table = sandbox.store.table(table_name)
            match = (
                "MATCH_ANY" if params.get("$filtertype", "").upper() in ("OR", "MATCH_ANY") else "MATCH_ALL"
            )
            compiled = compile_query(
                table.schema, {"condition": conditions, "matchType": match}, query_context(session)
            )
        except QueryError as error:
            raise AisError(400, str(error)) from None
        fields = params.getlist("$field")
        columns = _columns(table.schema, "|".join(fields) if fields else None)
        limit = _page_size(params.get("$limit"))
        cursor = Cursor(
            0, 0, "", table.schema.name, columns, sandbox.store.select(table, compiled, []), limit, 0, 0.0
        )
        page, more = cursor.take(limit)
        return JSONResponse(
            grid_response(
                table.schema, columns, page, more=more, grid_id=0, stack_id=0, state_id=0, rid="", link=None
            )
        )

    # -- orchestrations --------------------------------------------------------------------------

    async def run_orchestration(request: Request, name: str) -> JSONResponse:
        accept = request.headers.get("accept", "").lower()
        if accept and not any(kind in accept for kind in ("application/json", "*/*", "application/*")):
            raise AisError(
                406, f"Invalid Accept header {accept!r}; the orchestrator answers application/json"
            )
        if request.method == "GET":
            body: dict[str, Any] = dict(request.query_params)
        else:
            body = await read_json(request, allow_empty=True)
        orchestration = orchestrations.ORCHESTRATIONS.get(name)
        session = authenticate(sandbox, request, body)
        if orchestration is None:
            raise AisError(500, f"Orchestration {name} was not found or the user is not authorized to run it")
        inputs = {
            k: v
            for k, v in body.items()
            if k not in ("token", "deviceName", "username", "password", "environment", "role", "jasserver")
        }
        started = sandbox.now()
        context = orchestrations.Context(
            username=session.username,
            device=session.device or "AIS",
            simple_date_format=sandbox.simple_date_format,
            now=started,
            duplicate_check=sandbox.options.duplicate_check,
        )
        try:
            outputs = orchestration.run(sandbox.store, inputs, context)
        except orchestrations.BusinessError as error:
            sandbox.stats.orchestrations[f"{name} business_error"] += 1
            raise AisError(
                500,
                f"{name} failed: {error.code} {error.title}",
                type="ORCHESTRATION",
                errorText=f"{error.code} {error.title}",
                userDefinedErrorText=f"{error.field}: {error.text}",
            ) from None
        loss = sandbox.lose_committed_response()
        if loss is not None:
            # everything is written; the middleware throws the answer away
            request.scope["sandbox.lose_response"] = loss
            sandbox.stats.orchestrations[f"{name} committed_response_lost"] += 1
        else:
            sandbox.stats.orchestrations[f"{name} success"] += 1
        ended = sandbox.now()
        stamp = "%Y-%m-%dT%H:%M:%S.%f"
        outputs.update(
            {
                "jde__status": "SUCCESS",
                "jde__simpleMessage": f"{name} completed",
                "jde__startTimestamp": started.strftime(stamp)[:-3] + started.strftime("%z"),
                "jde__endTimestamp": ended.strftime(stamp)[:-3] + ended.strftime("%z"),
                "jde__serverExecutionSeconds": round((ended - started).total_seconds(), 3),
            }
        )
        return JSONResponse(outputs)

    for prefix in ("/jderest/v3/orchestrator", "/jderest/v2/orchestrator", "/jderest/orchestrator"):
        app.add_api_route(f"{prefix}/{{name}}", run_orchestration, methods=["POST", "GET"])

    @app.get("/jderest/discover")
    async def discover(request: Request) -> JSONResponse:
        authenticate(sandbox, request, {})
        return JSONResponse(
            {
                "orchestrations": [
                    {
                        "name": o.name,
                        "description": o.description,
                        "inputFormat": "Generic",
                        "inputs": [{"name": n, "type": t} for n, t in o.inputs],
                        "category": "55 - HubSpot integration",
                    }
                    for o in orchestrations.ORCHESTRATIONS.values()
                ]
            }
        )

    async def default_config(request: Request) -> JSONResponse:
        options = sandbox.options
        return JSONResponse(
            {
                "jasHost": "jas.sandbox.invalid",
                "jasPort": "8080",
                "jasProtocol": "http",
                "defaultEnvironment": ENVIRONMENTS[0],
                "defaultRole": "*ALL",
                "displayEnvironment": True,
                "displayRole": True,
                "displayJasServer": False,
                "defaultJasServer": "http://jas.sandbox.invalid:8080",
                "ssoAllowed": False,
                "allowSelfSignedSsl": False,
                "sessionTimeout": _minutes(options.session_timeout),
                "timeToLive": _minutes(options.token_ttl),
                "aisVersion": "EnterpriseOne 9.2.8.3",
                "capabilityList": [
                    {
                        "name": n,
                        "shortDescription": d,
                        "longDescription": d,
                        "asOfRelease": r,
                        "sinceVersion": "v2",
                    }
                    for n, d, r in CAPABILITIES
                ],
                "requiredCapabilityMissing": False,
                "defaultCachingOn": False,
                "disconnectedTimeout": "0",
                "allowBasicAuth": options.allow_basic_auth,
                "allowUserPassword": True,
                "keepJasSessionOpen": True,
            }
        )

    app.add_api_route("/jderest/defaultconfig", default_config, methods=["GET"])
    app.add_api_route("/jderest/v2/defaultconfig", default_config, methods=["GET"])

    from airflow_provider_mlconn.sandbox.jde import control, control_ledgers

    app.include_router(control.router)
    app.include_router(control_ledgers.router)
    app.add_middleware(SandboxMiddleware, sandbox=sandbox)
    return app


def _minutes(seconds: float) -> str:
    minutes = seconds / 60
    return str(int(minutes)) if minutes == int(minutes) else f"{minutes:.4f}".rstrip("0")


class _DroppedConnectionFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "without completing response" not in message and "without starting response" not in message


def _quiet_dropped_connection_logs() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DroppedConnectionFilter) for f in logger.filters):
        logger.addFilter(_DroppedConnectionFilter())


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_FAULTY_PREFIXES = ("/jderest/v2/dataservice", "/jderest/v3/orchestrator/", "/jderest/v2/orchestrator/")
_LOGIN_FAMILY = ("jde-login", "jde-logout", "jde-validate-session")
# What the web tier in front of AIS (Oracle HTTP Server, a load balancer) answers when AIS is too slow.
GATEWAY_TIMEOUT_PAGE = (
    b'<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>504 Gateway Timeout</title>\n'
    b"</head><body>\n<h1>Gateway Timeout</h1>\n<p>The gateway did not receive a timely response\n"
    b"from the upstream server or application.</p>\n</body></html>\n"
)


class SandboxMiddleware:
    """Counts requests per route and status, adds ``--latency-ms``, and injects ``--fault-rate`` faults
    (our test device, not AIS behaviour) into data-service and orchestration calls: a 500
    ``ServiceErrorResponse`` before the call runs, a 500 after which a ``next`` cursor is gone, or a
    connection dropped after the call ran (the client never learns whether it happened). An
    orchestration that committed and was picked by ``--fault-after-commit-rate`` loses its answer
    here: the connection closes without a byte, or a 504 gateway page comes instead."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sandbox = self.sandbox
        path: str = scope["path"]
        status_holder = [0]

        lost = [False]

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                if scope.get("sandbox.lose_response"):
                    lost[0] = True
                    return
                status_holder[0] = message["status"]
            elif lost[0]:
                return
            await send(message)

        if path.startswith("/jderest/") and sandbox.options.latency_ms > 0:
            await asyncio.sleep(sandbox.options.latency_ms / 1000)
        fault = self._fault(path)
        try:
            if fault == "error":
                sandbox.stats.counters["fault_error"] += 1
                body = json.dumps(error_body("Server failed to process request")).encode()
                await counting_send(
                    {"type": "http.response.start", "status": 500,
                     "headers": [(b"content-type", b"application/json"),
                                 (b"content-length", str(len(body)).encode())]}
                )  # fmt: skip
                await send({"type": "http.response.body", "body": body})
                return
            if fault == "drop":
                sandbox.stats.counters["fault_drop"] += 1

                async def swallow(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        status_holder[0] = -1

                await self.app(scope, receive, swallow)
                # Headers promise a body that never comes: the client sees the connection die.
                await send(
                    {"type": "http.response.start", "status": 200,
                     "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]}
                )  # fmt: skip
                await send({"type": "http.response.body", "body": b'{"fs_', "more_body": True})
                return
            if fault == "lose_cursor":
                scope["sandbox.fault"] = "lose_cursor"
            await self.app(scope, receive, counting_send)
            if lost[0]:
                status_holder[0] = await self._lose_response(scope["sandbox.lose_response"], receive, send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", path) if route is not None else path
            if "{name}" in template:
                template = path
            method = scope.get("method", "GET")
            status = "dropped" if status_holder[0] == -1 else status_holder[0]
            sandbox.stats.requests[f"{method} {template} {status}"] += 1

    async def _lose_response(self, kind: str, receive: Receive, send: Send) -> int:
        """Answer a committed call with nothing (the status counted is -1) or a 504 page."""
        if kind == "gateway":
            self.sandbox.stats.counters["fault_after_commit_gateway"] += 1
            await send(
                {"type": "http.response.start", "status": 504,
                 "headers": [(b"content-type", b"text/html; charset=iso-8859-1"),
                             (b"content-length", str(len(GATEWAY_TIMEOUT_PAGE)).encode())]}
            )  # fmt: skip
            await send({"type": "http.response.body", "body": GATEWAY_TIMEOUT_PAGE})
            return 504
        self.sandbox.stats.counters["fault_after_commit_drop"] += 1
        # ASGI has no "close without answering"; uvicorn's receive() belongs to the request cycle
        # that owns the socket, so abort that (and yield, so uvicorn sees the disconnect first).
        transport = getattr(getattr(receive, "__self__", None), "transport", None)
        if isinstance(transport, asyncio.Transport):
            transport.abort()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        else:  # another server: cut the answer short instead
            await send(
                {"type": "http.response.start", "status": 200,
                 "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]}
            )  # fmt: skip
            await send({"type": "http.response.body", "body": b'{"jde_', "more_body": True})
        return -1

    def _fault(self, path: str) -> str | None:
        sandbox = self.sandbox
        rate = sandbox.options.fault_rate
        if rate <= 0 or not path.startswith(_FAULTY_PREFIXES) or path.rsplit("/", 1)[-1] in _LOGIN_FAMILY:
            return None
        roll = sandbox.fault_random.random()
        if roll >= rate:
            return None
        kind = sandbox.fault_random.random()
        if path.endswith("/dataservice/next"):
            return "error" if kind < 0.4 else "lose_cursor" if kind < 0.7 else "drop"
        return "error" if kind < 0.6 else "drop"
