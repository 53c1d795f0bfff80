"""The client API's router: route keys, path parameters, validation errors, one error shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from image_gateway.errors import Conflict
from image_gateway.http.router import Reply, Request, Router
from image_gateway.models.task_query import TaskListQuery
from pydantic import BaseModel, ConfigDict, ValidationError


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str
    n: int = 1


def _router() -> Router:
    router = Router()

    @router.route("GET /v1/tasks/{taskId}")
    def task(request: Request) -> Reply:
        return Reply(200, json.dumps({"id": request.params["taskId"], "by": request.caller}))

    @router.route("GET /v1/tasks")
    def tasks(request: Request) -> Reply:
        query = request.query_as(TaskListQuery)
        return Reply(200, json.dumps({"limit": query.limit, "cursor": query.cursor}))

    @router.route("POST /v1/images")
    def images(request: Request) -> Reply:
        body = request.json(Body)
        if body.prompt == "conflict":
            raise Conflict("already", code="idempotency_key_reused")
        return Reply(202, body.model_dump_json(), {"x-n": str(body.n)})

    return router


def _event(route: str, *, body: str | None = None, **extra: Any) -> dict[str, Any]:
    method, path = route.split(" ", 1)
    return {
        "routeKey": route,
        "rawPath": path,
        "requestContext": {"http": {"method": method, "path": path}},
        "headers": {"Content-Type": "application/json"},
        "body": body,
        **extra,
    }


def _answer(reply: Reply) -> tuple[int, dict[str, Any]]:
    result = reply.result()
    assert result["headers"]["Content-Type"] == "application/json"
    return result["statusCode"], json.loads(result["body"])


def test_a_route_key_and_its_path_parameters_come_from_api_gateway() -> None:
    event = _event("GET /v1/tasks/{taskId}", pathParameters={"taskId": "tsk_1"})

    assert _answer(_router().dispatch(event, "c")) == (200, {"id": "tsk_1", "by": "c"})


def test_without_a_route_key_the_path_is_matched_on_the_templates() -> None:
    event = _event("GET /v1/tasks/tsk_2", routeKey="$default")

    assert _answer(_router().dispatch(event, "c")) == (200, {"id": "tsk_2", "by": "c"})


@pytest.mark.parametrize(
    "route",
    ["GET /v1/nothing", "POST /v1/tasks/tsk_1", "GET /v1/tasks/tsk_1/more", "GET /v1/tasks//"],
)
def test_an_unknown_route_or_method_is_a_404_route_not_found(route: str) -> None:
    status, body = _answer(_router().dispatch(_event(route, routeKey="$default"), "c"))

    assert (status, body["error"]["code"]) == (404, "route_not_found")


def test_a_body_is_validated_by_its_model_and_each_bad_field_is_named() -> None:
    event = _event("POST /v1/images", body='{"n": "many", "extra": 1}')

    status, body = _answer(_router().dispatch(event, "c"))

    assert (status, body["error"]["code"]) == (400, "validation_error")
    assert {f["field"] for f in body["error"]["fields"]} == {"prompt", "n", "extra"}
    assert "prompt: Field required" in body["error"]["message"]


def test_a_body_that_is_not_json_is_400_invalid_json() -> None:
    status, body = _answer(_router().dispatch(_event("POST /v1/images", body="{oops"), "c"))

    assert (status, body["error"]["code"]) == (400, "invalid_json")


def test_a_good_body_reaches_the_handler_and_its_headers_the_answer() -> None:
    reply = _router().dispatch(_event("POST /v1/images", body='{"prompt": "p", "n": 2}'), "c")

    assert reply.result()["headers"]["x-n"] == "2"
    assert _answer(reply) == (202, {"prompt": "p", "n": 2})


def test_a_gateway_error_from_a_handler_is_its_status_and_code() -> None:
    event = _event("POST /v1/images", body='{"prompt": "conflict"}')

    status, body = _answer(_router().dispatch(event, "c"))

    assert (status, body["error"]["code"]) == (409, "idempotency_key_reused")


def test_a_query_is_validated_and_its_fields_are_named_query_dot_name() -> None:
    router = _router()

    ok = router.dispatch(_event("GET /v1/tasks", queryStringParameters={"limit": "5"}), "c")
    bad = router.dispatch(_event("GET /v1/tasks", queryStringParameters={"limit": "0"}), "c")

    assert _answer(ok) == (200, {"limit": 5, "cursor": None})
    status, body = _answer(bad)
    assert (status, body["error"]["fields"][0]["field"]) == (400, "query.limit")


def test_a_route_without_a_caller_is_401_for_the_handler_that_needs_one() -> None:
    event = _event("GET /v1/tasks/{taskId}", pathParameters={"taskId": "t"})

    status, body = _answer(_router().dispatch(event, None))

    assert (status, body["error"]["code"]) == (401, "unauthorized")


def test_a_route_cannot_be_registered_twice() -> None:
    router = _router()

    with pytest.raises(ValueError, match="twice"):
        router.route("GET /v1/tasks")(lambda request: Reply(200, "{}"))


def test_anything_else_a_handler_raises_reaches_the_caller() -> None:
    router = Router()

    @router.route("GET /boom")
    def boom(request: Request) -> Reply:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        router.dispatch(_event("GET /boom"), "c")


def test_a_model_the_gateway_builds_itself_failing_is_not_the_callers_400() -> None:
    # GIVEN a handler whose own model (not the request's) fails validation: a bug
    router = Router()

    @router.route("GET /bug")
    def bug(request: Request) -> Reply:
        Body.model_validate({"n": "not a number"})
        return Reply(200, "{}")

    # THEN it is not rendered as the caller's validation_error: it reaches the handler's 500
    with pytest.raises(ValidationError):
        router.dispatch(_event("GET /bug"), "c")
