"""Every AWS call a function's role is not allowed to make: logged and counted.

A refused call raises botocore's ``ClientError`` as any other AWS error does, so the invocation
fails and its task takes the usual way back (the queue's retries and dead-letter queue, the
sweeper). What this adds is the name of what was refused: one ERROR line with the action, the
resource and AWS's message, and one ``AccessDenied`` value (dimension ``Function``), so a role
missing a permission is found in the logs and on a dashboard, not guessed from a 500.

Standard library only (``JsonLogger``, ``EmfMetrics``): it is registered on every botocore
session (:func:`image_gateway.adapters.boto.new_session`), the webhook's cold start included.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from image_gateway.adapters.emf_metrics import EmfMetrics
from image_gateway.json_log import JsonLogger

ACCESS_DENIED_CODES: Final = frozenset(
    {"AccessDenied", "AccessDeniedException", "AuthorizationError", "UnauthorizedOperation"}
)
"""The error codes AWS services answer a refused call with (S3, most JSON services, SNS...);
any 403 counts too (moto answers JSON services' refusals in XML, which botocore cannot read)."""

_CONTEXT_KEY: Final = "image_gateway_resource"


def resource_of(service: str, params: Mapping[str, Any]) -> str:
    """The resource a call's parameters name, as precisely as they name it (no values)."""
    if "Bucket" in params:
        key = params.get("Key")
        return f"arn:aws:s3:::{params['Bucket']}" + (f"/{key}" if key else "")
    if "TransactItems" in params:
        tables = {
            item.get("TableName", "?")
            for entry in params["TransactItems"]
            for item in entry.values()
            if isinstance(item, Mapping)
        }
        return ", ".join(sorted(tables))
    if "RequestItems" in params:
        return ", ".join(sorted(params["RequestItems"]))
    if "TableName" in params:
        index = params.get("IndexName")
        return str(params["TableName"]) + (f"/index/{index}" if index else "")
    if "Names" in params:  # ssm:GetParameters: every parameter it asked for
        return ", ".join(str(name) for name in params["Names"])
    if service == "events" and params.get("Entries"):
        return str(params["Entries"][0].get("EventBusName", "default"))
    for name in ("QueueUrl", "SecretId", "Name", "KeyId", "stateMachineArn", "executionArn"):
        if name in params:
            return str(params[name])
    return "*"


class AccessDeniedReporter:
    """botocore event handlers: remember each call's resource, report a refused call."""

    def __init__(self, logger: JsonLogger | None = None, metrics: Any = None) -> None:
        self._logger = logger
        self._metrics = metrics

    def remember(
        self, params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        """``before-parameter-build``: note the resource the call is about."""
        context[_CONTEXT_KEY] = resource_of(model.service_model.signing_name, params)

    def report(
        self, parsed: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        """``after-call``: a refused call is logged with its action and resource, and counted."""
        error = parsed.get("Error") or {}
        status = (parsed.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if error.get("Code") not in ACCESS_DENIED_CODES and status != 403:
            return
        function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "unknown")
        logger = self._logger or JsonLogger()
        logger.error(
            "AWS access denied",
            action=f"{model.service_model.signing_name}:{model.name}",
            resource=context.get(_CONTEXT_KEY, "*"),
            error_code=error.get("Code"),
            error_message=error.get("Message"),
            function=function,
        )
        metrics = self._metrics or EmfMetrics(
            os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ImageTaskGateway")
        )
        metrics.put("AccessDenied", 1, "Count", {"Function": function})


def watch_access_denied(session: Any, reporter: AccessDeniedReporter | None = None) -> None:
    """Report every refused call made by clients of ``session`` (a botocore session)."""
    reporter = reporter or AccessDeniedReporter()
    session.register("before-parameter-build", reporter.remember)
    session.register("after-call", reporter.report)
