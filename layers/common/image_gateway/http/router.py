"""The client API's router: a table of API Gateway route keys, pydantic validation, one error shape.

Why not Powertools' ``APIGatewayHttpResolver`` (which this API used until issue 13): measured on
the built layer with Python 3.13 (``bench`` figure 1 and ``python -X importtime``), importing
``aws_lambda_powertools.event_handler`` costs about 30 ms of the API function's cold start (the
package also imports its AppSync, Bedrock and asyncio resolvers), against a whole budget of 3x
``import boto3`` (about 340 ms here). The API needs little of it: API Gateway has already matched
the route (``routeKey``) and extracted the path parameters, bodies are validated by the
request's own pydantic models, and every answer is JSON. Logging and metrics stay Powertools'.

Pure functions of the HTTP API (payload 2.0) event: no AWS. The OpenAPI document is written in
:mod:`image_gateway.http.contract`, and a test checks it against this table and template.yaml.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from image_gateway.errors import GatewayError, InvalidRequest, NotFound, Unauthorized
from image_gateway.http.gate import route_key
from image_gateway.http.json_body import decode_json_object

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Request:
    """One admitted request: its route, path and query parameters, headers, body and caller."""

    route: str
    params: Mapping[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: str | None
    event: Mapping[str, Any]
    client_id: str | None = None

    @property
    def caller(self) -> str:
        """The client the gate authenticated (every route but the public ones has one)."""
        if self.client_id is None:
            raise Unauthorized("send your API key as 'Authorization: Bearer <key>'")
        return self.client_id

    def json(self, model: type[M]) -> M:
        """The body, parsed once with the safe decoder and validated by ``model``.

        Raises ``InvalidRequest`` (``invalid_json``) or :class:`InputInvalid` (a 400
        ``validation_error`` once :meth:`Router.dispatch` renders it).
        """
        body = decode_json_object(self.body or "")
        try:
            return model.model_validate(body)
        except ValidationError as invalid:
            raise InputInvalid(invalid, prefix="") from None

    def query_as(self, model: type[M]) -> M:
        """The query string validated by ``model`` (errors name the field ``query.<name>``)."""
        try:
            return model.model_validate(dict(self.query))
        except ValidationError as invalid:
            raise InputInvalid(invalid, prefix="query.") from None


@dataclass(frozen=True)
class Reply:
    """A JSON answer."""

    status: int
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, status: int, model: BaseModel) -> Reply:
        """``model`` serialised as the body."""
        return cls(status, model.model_dump_json())

    def result(self) -> dict[str, Any]:
        """The API Gateway (payload 2.0) result."""
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": "application/json", **self.headers},
            "body": self.body,
            "isBase64Encoded": False,
        }


Handler = Callable[[Request], Reply]


class InputInvalid(Exception):
    """A body or query its model refused: the caller's mistake, a 400 (a model the gateway
    builds itself failing is a bug, and stays a 500)."""

    def __init__(self, error: ValidationError, *, prefix: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.prefix = prefix


class Router:
    """Handlers by route key (``"GET /v1/tasks/{taskId}"``, as template.yaml declares them)."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    @property
    def routes(self) -> frozenset[str]:
        """Every route key this router serves."""
        return frozenset(self._handlers)

    def route(self, key: str) -> Callable[[Handler], Handler]:
        """Register ``handler`` for ``key``."""

        def register(handler: Handler) -> Handler:
            if key in self._handlers:
                raise ValueError(f"route {key} registered twice")
            self._handlers[key] = handler
            return handler

        return register

    def match(self, event: Mapping[str, Any]) -> tuple[str, Handler, dict[str, str]]:
        """The route, handler and path parameters of ``event``.

        API Gateway names the route it matched in ``routeKey`` and gives the parameters in
        ``pathParameters``; an event without a route key (``$default``) is matched on its path.
        """
        key = route_key(event)
        handler = self._handlers.get(key)
        if handler is not None:
            params = event.get("pathParameters") or {}
            return key, handler, {str(k): str(v) for k, v in params.items()}
        method, _, path = key.partition(" ")
        for candidate, handler in self._handlers.items():
            found = _match_path(candidate, method, path)
            if found is not None:
                return candidate, handler, found
        raise NotFound("no such route", code="route_not_found")

    def dispatch(self, event: Mapping[str, Any], client_id: str | None) -> Reply:
        """The handler's reply; a deliberate error or invalid input as its ``{"error"}`` reply.

        Anything else raises: the caller logs it and answers 500 ``internal_error``.
        """
        try:
            key, handler, params = self.match(event)
            headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
            query = event.get("queryStringParameters") or {}
            request = Request(
                route=key,
                params=params,
                query={str(k): str(v) for k, v in query.items()},
                headers=headers,
                body=event.get("body"),
                event=event,
                client_id=client_id,
            )
            return handler(request)
        except GatewayError as error:
            return error_reply(error)
        except InputInvalid as invalid:
            return validation_reply(invalid.error, prefix=invalid.prefix)


def error_reply(error: GatewayError) -> Reply:
    """A deliberate error: its status and ``{"error": {"code", "message", ...}}``."""
    return Reply(error.status_code, json.dumps(error.to_body()), error.headers())


def validation_reply(invalid: ValidationError, *, prefix: str) -> Reply:
    """Bad fields: 400 ``validation_error``, one entry per problem, named by field path."""
    problems: list[dict[str, Any]] = []
    for item in invalid.errors():
        location = ".".join(str(part) for part in item.get("loc", ()))
        problems.append(
            {
                "field": f"{prefix}{location}" if location else "body",
                "message": str(item.get("msg", "invalid")).removeprefix("Value error, "),
                "type": item.get("type"),
            }
        )
    error = InvalidRequest(
        "; ".join(f"{p['field']}: {p['message']}" for p in problems),
        code="validation_error",
        fields=problems,
    )
    return error_reply(error)


def _match_path(template_key: str, method: str, path: str) -> dict[str, str] | None:
    """Path parameters if ``METHOD path`` fits the route key ``template_key``, else None."""
    template_method, _, template = template_key.partition(" ")
    if template_method != method:
        return None
    want, got = template.removeprefix("/").split("/"), path.removeprefix("/").split("/")
    if len(want) != len(got):
        return None
    params: dict[str, str] = {}
    for pattern, segment in zip(want, got, strict=True):
        if pattern.startswith("{") and pattern.endswith("}"):
            if not segment:
                return None
            params[pattern[1:-1]] = segment
        elif pattern != segment:
            return None
    return params
