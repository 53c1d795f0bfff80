"""The API function's handler in process, on the fakes: the gate (key first, then media type,
size and bytes), the router and its validation, and one error shape for every failure."""

from __future__ import annotations

import base64
import copy
import io
import json
from types import ModuleType
from typing import Any

import pytest
from image_gateway.errors import Conflict

from devstack.template import ROOT
from tests.fakes import FakeDependencies, fake_settings
from tests.unit.handlers import FixedDependencies, LambdaContextStub, load_file
from tests.unit.service.support import png

SAMPLE = json.loads((ROOT / "events" / "api-create-image.json").read_text())
REQUEST_ID = SAMPLE["requestContext"]["requestId"]
GOOD_BODY = '{"prompt": "a lighthouse", "provider": "mountsea-async"}'


@pytest.fixture(scope="module")
def api() -> ModuleType:
    """functions/api/app.py, imported from its file as Lambda does."""
    return load_file("functions/api/app.py", "api_under_test")


@pytest.fixture
def deps(monkeypatch: pytest.MonkeyPatch, api: ModuleType) -> FakeDependencies:
    """The handler's dependencies: fakes with a 256 KiB body limit."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    fakes = FakeDependencies(
        default_image=png(64, 64), settings=fake_settings(max_request_body_bytes=256 * 1024)
    )
    monkeypatch.setattr(api, "DEPS", FixedDependencies(fakes))
    return fakes


@pytest.fixture
def key(deps: FakeDependencies) -> str:
    """A valid API key of client ``c``."""
    return deps.api_keys.create_key("c")


def event(
    route: str,
    *,
    key: str | None = None,
    body: str | bytes | None = None,
    content_type: str | None = "application/json",
) -> dict[str, Any]:
    """An HTTP API event for ``"METHOD /path"`` (bytes bodies arrive base64-encoded)."""
    method, path = route.split(" ", 1)
    built: dict[str, Any] = copy.deepcopy(SAMPLE)
    built["routeKey"] = route
    built["rawPath"] = built["requestContext"]["http"]["path"] = path
    built["requestContext"]["http"]["method"] = method
    headers: dict[str, str] = {"host": built["headers"]["host"]}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    if content_type is not None:
        headers["content-type"] = content_type
    built["headers"] = headers
    if isinstance(body, bytes):
        built["body"], built["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        built["body"], built["isBase64Encoded"] = body, False
    return built


def call(api: ModuleType, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Invoke the handler; the status and the JSON body."""
    result = api.lambda_handler(request, LambdaContextStub())
    return result["statusCode"], json.loads(result["body"])


def error_of(api: ModuleType, request: dict[str, Any]) -> tuple[int, str]:
    """Invoke the handler, which must answer ``{"error": {"code", "message"}}``; status, code."""
    status, body = call(api, request)
    assert set(body) == {"error"}, body
    assert body["error"]["message"], body
    return status, body["error"]["code"]


UMT = "unsupported_media_type"
HOSTILE_BODIES: dict[str, tuple[str | bytes, str | None, int, str]] = {
    # name: (body, content type, status, code)
    "invalid-utf8": (b'{"prompt":"\xff"}', "application/json", 400, "invalid_json"),
    "nested-100000-deep": ("[" * 100_000 + "]" * 100_000, "application/json", 400, "invalid_json"),
    "nested-40-deep": (
        '{"prompt": "x", "a": ' + "[" * 40 + "]" * 40 + "}",
        None,
        400,
        "invalid_json",
    ),
    "integer-of-5000-digits": (
        '{"prompt": "x", "n": ' + "7" * 5000 + "}",
        None,
        400,
        "invalid_json",
    ),
    "nan": ('{"prompt": "x", "output_compression": NaN}', None, 400, "invalid_json"),
    "unpaired-surrogate": ('{"prompt": "\\ud800"}', None, 400, "invalid_json"),
    "multipart-without-boundary": ("--x--", "multipart/form-data", 415, "unsupported_media_type"),
    "multipart": ("--b\r\n--b--", "multipart/form-data; boundary=b", 415, "unsupported_media_type"),
    "text-plain": ("prompt=x", "text/plain", 415, "unsupported_media_type"),
    "form-urlencoded": ("prompt=x", "application/x-www-form-urlencoded", 415, UMT),
    "no-content-type": (GOOD_BODY, "", 415, "unsupported_media_type"),
    "latin-1-charset": (GOOD_BODY, "application/json; charset=latin-1", 415, UMT),
    "empty": ("", None, 400, "invalid_json"),
    "whitespace": (" \n ", None, 400, "invalid_json"),
    "null": ("null", None, 400, "invalid_json"),
    "a-list": ('[{"prompt": "x"}]', None, 400, "invalid_json"),
    "a-string": ('"prompt"', None, 400, "invalid_json"),
    "not-json": ("{not json", None, 400, "invalid_json"),
    "over-the-body-limit": ('{"prompt": "' + "x" * 300_000 + '"}', None, 413, "body_too_large"),
    "prompt-a-number": ('{"prompt": 5}', None, 400, "validation_error"),
    "unknown-field": ('{"prompt": "x", "colour": "red"}', None, 400, "validation_error"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_a_hostile_body_with_a_key_gets_a_4xx_with_a_stable_code_and_writes_nothing(
    api: ModuleType, deps: FakeDependencies, key: str, name: str
) -> None:
    # GIVEN a hostile body (see HOSTILE_BODIES) from a client with a valid key
    body, content_type, status, code = HOSTILE_BODIES[name]
    content_type = "application/json" if content_type is None else content_type or None

    # WHEN it is posted THEN its 4xx and code (the same code for each kind of fault)
    answer = error_of(api, event("POST /v1/images", key=key, body=body, content_type=content_type))

    assert answer == (status, code)
    assert deps.tasks.all() == [] and deps.providers.calls == [] and deps.images.objects == {}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_without_a_key_every_body_gets_the_same_401_and_no_detail(
    api: ModuleType, deps: FakeDependencies, name: str
) -> None:
    # GIVEN a hostile body and no key WHEN posted THEN 401 before the body is looked at
    body, content_type, _, _ = HOSTILE_BODIES[name]
    content_type = "application/json" if content_type is None else content_type or None

    status, answer = call(api, event("POST /v1/images", body=body, content_type=content_type))

    assert status == 401
    assert answer == {
        "error": {
            "code": "unauthorized",
            "message": "send your API key as 'Authorization: Bearer <key>'",
        }
    }
    assert deps.tasks.all() == []


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "APPLICATION/JSON",
        "Application/Json; Charset=UTF-8",
        "application/json;",
    ],
)
def test_a_json_media_type_is_read_case_insensitively_with_parameters(
    api: ModuleType, deps: FakeDependencies, key: str, content_type: str
) -> None:
    status, body = call(
        api, event("POST /v1/images", key=key, body=GOOD_BODY, content_type=content_type)
    )

    assert status == 202, body
    assert body["status"] in {"submitted", "queued"}


def test_a_body_api_gateway_base64_encoded_is_read_as_utf8(
    api: ModuleType, deps: FakeDependencies, key: str
) -> None:
    # GIVEN a valid body with non-ASCII text, base64-encoded by API Gateway WHEN posted THEN 202
    body = '{"prompt": "un phare à l\'aube", "provider": "mountsea-async"}'.encode()

    status, answer = call(api, event("POST /v1/images", key=key, body=body))

    assert status == 202
    assert deps.tasks.require(answer["task_id"]).request.prompt == "un phare à l'aube"


def test_a_gateway_error_raised_inside_a_route_becomes_its_error_reply(
    api: ModuleType, deps: FakeDependencies
) -> None:
    # GIVEN an event that skipped the gate, with JSON only the decoder refuses (too deep)
    request = event("POST /v1/images", body='{"prompt": ' + "[" * 50 + "]" * 50 + "}")

    # WHEN the router dispatches it THEN the decoder's GatewayError became our 400 invalid_json
    result = api.router.dispatch(request, "c").result()

    assert result["statusCode"] == 400
    assert json.loads(result["body"])["error"]["code"] == "invalid_json"


def test_a_path_without_a_route_key_is_matched_on_its_template(
    api: ModuleType, deps: FakeDependencies, key: str
) -> None:
    # GIVEN a task and an event API Gateway sent to $default (no route key, no path parameters)
    _, created = call(api, event("POST /v1/images", key=key, body=GOOD_BODY))
    request = event(f"GET /v1/tasks/{created['task_id']}", key=key, content_type=None)
    request["routeKey"] = "$default"

    # WHEN handled THEN the task route answered, with the id from the path
    status, body = call(api, request)

    assert status == 200
    assert body["task_id"] == created["task_id"]


def test_an_unexpected_exception_is_a_500_internal_error_with_the_request_id_and_a_log(
    api: ModuleType, deps: FakeDependencies, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the task table failing in a way nobody planned for
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("table on fire")

    logged: list[str] = []
    monkeypatch.setattr(deps.tasks, "list_for_client", broken)
    monkeypatch.setattr(api.logger, "exception", lambda message, **_: logged.append(message))

    # WHEN the caller lists its tasks
    status, body = call(api, event("GET /v1/tasks", key=key, content_type=None))

    # THEN 500 internal_error in our shape, with API Gateway's request id; the traceback logged
    assert status == 500
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["request_id"] == REQUEST_ID
    assert logged == ["request failed unexpectedly"]


def test_a_failure_inside_the_gate_is_a_500_internal_error_too(
    api: ModuleType, deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the API key table unreachable WHEN a request arrives THEN 500 internal_error
    def unreachable(authorization: str | None) -> str:
        raise ConnectionError("dynamodb unreachable")

    monkeypatch.setattr(deps.api_keys, "client_for", unreachable)

    assert error_of(api, event("GET /v1/tasks", key="itg_x", content_type=None)) == (
        500,
        "internal_error",
    )


def test_a_gateway_error_from_the_service_layer_has_our_shape(
    api: ModuleType, deps: FakeDependencies, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise Conflict("nope", code="idempotency_key_reused")

    monkeypatch.setattr(api, "submit_task", refuse)

    assert error_of(api, event("POST /v1/images", key=key, body=GOOD_BODY)) == (
        409,
        "idempotency_key_reused",
    )


def test_an_unknown_route_is_a_404_route_not_found_after_the_key(
    api: ModuleType, deps: FakeDependencies, key: str
) -> None:
    assert error_of(api, event("GET /v2/nothing", key=key, content_type=None)) == (
        404,
        "route_not_found",
    )
    assert error_of(api, event("GET /v2/nothing", content_type=None)) == (401, "unauthorized")


def test_a_task_id_longer_than_any_is_not_found_without_a_lookup(
    api: ModuleType, deps: FakeDependencies, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a table that fails on keys over its size limit, as DynamoDB does (ValidationException)
    def strict_get(task_id: str) -> None:
        raise AssertionError(f"looked up a {len(task_id)}-character id")

    monkeypatch.setattr(deps.tasks, "get", strict_get)
    long_id = "tsk_" + "a" * 3000

    # WHEN it is read or cancelled THEN 404 task_not_found, as for any unknown task
    for route in (f"GET /v1/tasks/{long_id}", f"POST /v1/tasks/{long_id}/cancel"):
        assert error_of(api, event(route, key=key, content_type=None)) == (404, "task_not_found")


def test_the_openapi_document_needs_no_key(api: ModuleType, deps: FakeDependencies) -> None:
    status, document = call(api, event("GET /v1/openapi.json", content_type=None))

    assert status == 200
    assert "/v1/images" in document["paths"]


def test_a_get_with_a_body_ignores_it(api: ModuleType, deps: FakeDependencies, key: str) -> None:
    # GIVEN a GET carrying invalid UTF-8 bytes WHEN answered THEN the body is never read
    status, body = call(api, event("GET /v1/tasks", key=key, body=b"\xff\xfe"))

    assert (status, body["tasks"]) == (200, [])


def test_the_routes_of_the_gate_are_routes_of_the_api(api: ModuleType) -> None:
    # GIVEN the gate's public and JSON routes THEN each is served by the router (no stale entry)
    assert api.ROUTES.public | api.ROUTES.json_body <= api.router.routes


def test_a_submits_log_lines_name_the_task_and_the_callers_request(
    api: ModuleType, deps: FakeDependencies, key: str
) -> None:
    # GIVEN the handler's log lines in a buffer
    out = io.StringIO()
    handler = api.logger.registered_handler
    previous = handler.setStream(out)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]

    try:
        # WHEN a task is submitted
        status, body = call(api, event("POST /v1/images", key=key, body=GOOD_BODY))
        queued = next(line for line in lines() if line.get("message") == "task queued")
        # AND another request follows on the same instance
        call(api, event("GET /v1/tasks", key=key, content_type=None))
        api.logger.info("probe")
        probe = lines()[-1]
    finally:
        handler.setStream(previous)

    # THEN the submit's line carries the task id and API Gateway's request id (kept on the task)
    assert status == 202
    assert (queued["task_id"], queued["request_id"]) == (body["task_id"], REQUEST_ID)
    assert queued["correlation_id"] == REQUEST_ID
    assert deps.tasks.require(body["task_id"]).request_id == REQUEST_ID
    # AND the next invocation starts without them (clear_state)
    assert probe["message"] == "probe" and "task_id" not in probe


def test_a_submit_over_a_client_limit_is_a_429_with_retry_after(
    api: ModuleType, deps: FakeDependencies, key: str
) -> None:
    # GIVEN a client the operator allows no submit WHEN it submits
    deps.usage.set_limits("c", requests_per_minute=0)
    result = api.lambda_handler(
        event("POST /v1/images", key=key, body=GOOD_BODY), LambdaContextStub()
    )

    # THEN 429 with its code, the seconds to wait in the body and in Retry-After
    body = json.loads(result["body"])
    assert result["statusCode"] == 429
    assert body["error"]["code"] == "rate_limited"
    assert result["headers"]["Retry-After"] == str(body["error"]["retry_after_seconds"])
    assert deps.tasks.all() == []


def test_usage_shows_the_callers_day(api: ModuleType, deps: FakeDependencies, key: str) -> None:
    deps.usage.set_limits("c", daily_budget_usd=2.5)
    assert call(api, event("POST /v1/images", key=key, body=GOOD_BODY))[0] == 202

    status, body = call(api, event("GET /v1/usage", key=key, content_type=None))

    assert status == 200
    assert (body["client_id"], body["running_tasks"], body["daily_budget_usd"]) == ("c", 1, 2.5)
    assert (body["queued_tasks"], body["max_queued_tasks"]) == (0, 50_000)
    assert body["rate"]["used"] == 1


def test_the_providers_listing_shows_each_providers_breaker(
    api: ModuleType, deps: FakeDependencies, key: str
) -> None:
    # GIVEN apimart's breaker open for 30 s more after 2 successes and 3 failures, pmock's
    # cool-down over (half-open), and no record of the others
    from image_gateway.health.circuit import Circuit, CircuitState

    now = deps.health.now()
    stored = [
        Circuit("apimart", CircuitState.OPEN, open_until=now + 30, recent="SSFFF", version=1),
        Circuit("pmock", CircuitState.OPEN, open_until=now - 1, recent="F", version=1),
    ]
    for circuit in stored:
        assert deps.health.circuits.put(circuit, expires_at=now + 86400)

    # WHEN the caller lists the providers
    status, body = call(api, event("GET /v1/providers", key=key, content_type=None))

    # THEN each row carries its breaker's state, until when it is open, and its success rate
    assert status == 200
    health = {row["name"]: row["health"] for row in body["providers"]}
    assert health["apimart"]["state"] == "open"
    assert health["apimart"]["until"] is not None
    assert (health["apimart"]["recent_calls"], health["apimart"]["success_rate"]) == (5, 0.4)
    assert (health["pmock"]["state"], health["pmock"]["until"]) == ("half_open", None)
    assert health["openai"] == {
        "state": "closed",
        "until": None,
        "changed_at": None,
        "recent_calls": 0,
        "success_rate": None,
    }


def test_the_providers_listing_shows_what_each_provider_measured(
    api: ModuleType, deps: FakeDependencies, key: str
) -> None:
    # GIVEN apimart made three 1K images (2 s each) and failed once, and nothing measured
    # for pmock
    from image_gateway.health.measure import Sample
    from image_gateway.models.request import Operation

    now = deps.health.now()
    for answered in (True, True, True, False):
        deps.health.measurements.add(
            Sample("apimart", Operation.GENERATE, "1K", now, answered, 2.0 if answered else None)
        )

    # WHEN the caller lists the providers
    status, body = call(api, event("GET /v1/providers", key=key, content_type=None))

    # THEN apimart's row says what was measured over the window, per tier too; pmock's nothing
    assert status == 200
    rows = {row["name"]: row for row in body["providers"]}
    figures = rows["apimart"]["measured"]
    assert (figures["samples"], figures["success_rate"], figures["window"]) == (4, 0.75, "15m")
    assert 1.5 < figures["latency_p50_seconds"] <= figures["latency_p90_seconds"] <= 2.0
    assert [(t["operation"], t["tier"], t["samples"]) for t in figures["by_tier"]] == [
        ("generate", "1K", 4)
    ]
    assert rows["pmock"]["measured"] is None


# -- GET /v1/tasks?ids=... -----------------------------------------------------------------------
def with_query(request: dict[str, Any], **query: str) -> dict[str, Any]:
    """``request`` with a query string (API Gateway joins repeated names with commas)."""
    request["queryStringParameters"] = query
    request["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    return request


def submitted(api: ModuleType, key: str) -> str:
    """The id of a task the caller of ``key`` submits."""
    status, body = call(api, event("POST /v1/images", key=key, body=GOOD_BODY))
    assert status == 202, body
    return str(body["task_id"])


def test_ids_answer_each_asked_task_in_full_in_the_order_asked(
    api: ModuleType, deps: FakeDependencies, key: str
) -> None:
    # GIVEN three tasks of the caller
    ids = [submitted(api, key) for _ in range(3)]
    asked = [ids[2], ids[0], ids[1]]

    # WHEN it reads them by id in one call
    status, body = call(
        api, with_query(event("GET /v1/tasks", key=key, content_type=None), ids=",".join(asked))
    )

    # THEN each comes back as GET /v1/tasks/{id} answers it, in the order asked
    assert status == 200
    assert [t["task_id"] for t in body["tasks"]] == asked
    one = call(api, event(f"GET /v1/tasks/{ids[2]}", key=key, content_type=None))[1]
    assert body["tasks"][0].keys() == one.keys()
    assert body["not_found"] == []


def test_ids_of_unknown_and_foreign_tasks_are_not_found_alike(
    api: ModuleType, deps: FakeDependencies, key: str
) -> None:
    # GIVEN a task of the caller and a task of another client
    mine = submitted(api, key)
    theirs = submitted(api, deps.api_keys.create_key("other"))

    # WHEN the caller asks for both and an unknown id
    status, body = call(
        api,
        with_query(
            event("GET /v1/tasks", key=key, content_type=None), ids=f"{theirs},{mine},tsk_nope"
        ),
    )

    # THEN only its own task comes back; the other two are not found, told apart by nothing
    assert status == 200
    assert [t["task_id"] for t in body["tasks"]] == [mine]
    assert body["not_found"] == [theirs, "tsk_nope"]


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ({"ids": ",".join(f"tsk_{i}" for i in range(101))}, "over 100 ids"),
        ({"ids": ""}, "no id"),
        ({"ids": "a,,b"}, "an empty id"),
        ({"ids": "x" * 129}, "an id longer than any task id"),
        ({"ids": "a", "cursor": "abc"}, "ids with a cursor"),
        ({"ids": "a", "limit": "5"}, "ids with a limit"),
    ],
)
def test_a_bad_ids_query_is_a_400_validation_error(
    api: ModuleType, deps: FakeDependencies, key: str, query: dict[str, str], why: str
) -> None:
    # GIVEN a query with <why> WHEN the caller reads tasks THEN 400 validation_error
    request = with_query(event("GET /v1/tasks", key=key, content_type=None), **query)
    assert error_of(api, request) == (400, "validation_error"), why


def test_a_hundred_ids_are_read_in_one_store_call(
    api: ModuleType, deps: FakeDependencies, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a hundred tasks of the caller, and the store counting its batch reads
    first = deps.tasks.require(submitted(api, key))
    ids = [first.task_id] + [f"tsk_copy{n}" for n in range(99)]
    for task_id in ids[1:]:
        deps.tasks.create(first.model_copy(update={"task_id": task_id}))
    reads: list[int] = []
    get_many = deps.tasks.get_many
    monkeypatch.setattr(deps.tasks, "get_many", lambda i: reads.append(len(i)) or get_many(i))

    # WHEN the caller asks for a hundred tasks by id
    status, body = call(
        api, with_query(event("GET /v1/tasks", key=key, content_type=None), ids=",".join(ids))
    )

    # THEN one read of all hundred answers them all
    assert status == 200
    assert len(body["tasks"]) == 100
    assert reads == [100]


@pytest.mark.parametrize("input_file", ["null", "5", '"s3://images/inputs/' + "a" * 1100 + '"'])
def test_a_batch_with_an_input_file_not_a_ref_is_a_400_not_a_500(
    api: ModuleType, deps: FakeDependencies, key: str, input_file: str
) -> None:
    # GIVEN inline requests beside an input_file that is null, a number, or over 1,024 characters
    body = '{"requests": [{"custom_id": "a", "body": {"prompt": "x"}}], "input_file": %s}'

    # WHEN it is posted THEN 400 validation_error, and no batch is stored
    answer = error_of(api, event("POST /v1/batches", key=key, body=body % input_file))

    assert answer == (400, "validation_error")
    assert deps.batches.store.list_for_client("c", limit=10, cursor=None).batches == []
