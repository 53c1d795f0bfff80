"""IAM in devstack: each function runs as its own role, and moto enforces it.

Each function's execution role is built from template.yaml as SAM builds it: inline
``Statement`` documents as written, SAM policy templates (``EventBridgePutEventsPolicy``, ...)
expanded by samtranslator's own processor. devstack assumes the role (STS in moto) and starts the
function's workers with those credentials, as Lambda does. Once the stack is provisioned,
enforcement is switched on (moto's ``/moto-api/reset-auth``): from then on every request is
authenticated and checked against the caller's policies. The account's own credentials
(``devstack``/``devstack``: the tests, the demo, the docs' ``aws`` commands, the event
sources) belong to an administrator user.

moto's evaluation is basic (``moto/iam/access_control.py``); what it cannot see, devstack cannot
enforce (docs/development.md, "IAM"):

- moto names the resource of SQS and S3 requests only; :func:`patch_moto_resources` names the
  table (and index), bus, secret, parameter, key and state machine of the others, and checks a
  transaction's items as DynamoDB does (``PutItem``, ``UpdateItem``... on each item's table).
- conditions: moto evaluates condition keys only in trust policies, and a statement whose
  condition it cannot evaluate denies everything. :func:`for_moto` drops them (the statement
  then allows more than on AWS).
- resource policies (key policies, bucket and queue policies), X-Ray, CloudWatch Logs, and the
  calls Lambda or Step Functions make on the function's behalf (queue polling, invocation).
"""

from __future__ import annotations

import contextlib
import copy
import json
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import httpx

from devstack.template import Resolver

ADMIN_USER: Final = "devstack-admin"
ADMIN_KEY: Final = ("devstack", "devstack")
"""The account's own credentials (the docs' ``aws`` commands use them): an administrator."""

LAMBDA_TRUST: Final = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


# -- the template's policies, as SAM makes them -------------------------------------------------
def _policy_templates() -> Any:
    from samtranslator.policy_template_processor.processor import PolicyTemplatesProcessor

    return PolicyTemplatesProcessor(PolicyTemplatesProcessor.get_default_policy_templates_json())


def policy_documents(policies: Any) -> list[dict[str, Any]]:
    """The policy documents of one function's ``Policies`` (unresolved intrinsics).

    A ``Statement`` item is a document as written; an item naming a SAM policy template is
    expanded by samtranslator; a string (a managed policy) is not supported: the template uses
    none, and devstack would have to know its document.
    """
    if isinstance(policies, dict | str):
        policies = [policies]
    processor = None
    documents: list[dict[str, Any]] = []
    for item in policies or []:
        if isinstance(item, str):
            raise NotImplementedError(f"managed policy {item}: devstack knows no managed policy")
        if "Statement" in item:
            documents.append({"Version": "2012-10-17", **item})
            continue
        ((name, parameters),) = item.items()
        processor = processor or _policy_templates()
        if not processor.has(name):
            raise NotImplementedError(f"{name} is neither a statement nor a SAM policy template")
        documents.append({"Version": "2012-10-17", **processor.convert(name, parameters)})
    return documents


def function_policies(template: dict[str, Any], resolver: Resolver) -> dict[str, list[Any]]:
    """Every function's resolved policy documents, by logical id (only created resources)."""
    return {
        logical_id: resolver.resolve(policy_documents(spec["Properties"].get("Policies", [])))
        for logical_id, spec in template["Resources"].items()
        if spec["Type"] == "AWS::Serverless::Function"
    }


@dataclass(frozen=True)
class Permission:
    """One action a function's policy allows, and on what."""

    function: str
    action: str
    resources: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.function} {self.action} on {', '.join(self.resources)}"


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def permissions(function: str, documents: list[dict[str, Any]]) -> list[Permission]:
    """Each (action, resources) an Allow statement of ``documents`` grants, in order."""
    found: list[Permission] = []
    for document in documents:
        for statement in _as_list(document["Statement"]):
            if statement.get("Effect") != "Allow":
                continue
            resources = tuple(str(r) for r in _as_list(statement.get("Resource", "*")))
            for action in _as_list(statement.get("Action", [])):
                found.append(Permission(function, str(action), resources))
    return found


def without(documents: list[dict[str, Any]], permission: Permission) -> list[dict[str, Any]]:
    """``documents`` with ``permission`` (that action on those resources) taken out."""
    out = copy.deepcopy(documents)
    for document in out:
        statements = []
        for statement in _as_list(document["Statement"]):
            resources = tuple(str(r) for r in _as_list(statement.get("Resource", "*")))
            if resources == permission.resources:
                actions = [a for a in _as_list(statement["Action"]) if a != permission.action]
                if not actions:
                    continue
                statement = {**statement, "Action": actions}
            statements.append(statement)
        document["Statement"] = statements
    return [d for d in out if d["Statement"]]


def template_without(
    template: dict[str, Any], function: str, action: str, resource: str
) -> dict[str, Any]:
    """A copy of ``template`` whose ``function`` no longer has ``action`` on the resource whose
    logical id is ``resource`` (in its inline statements; what a reviewer would delete)."""
    from devstack.template import references

    changed = copy.deepcopy(template)
    found = False
    for item in changed["Resources"][function]["Properties"].get("Policies", []):
        if not isinstance(item, dict) or "Statement" not in item:
            continue
        kept = []
        for statement in _as_list(item["Statement"]):
            actions = _as_list(statement.get("Action", []))
            if action in actions and resource in set(references(statement.get("Resource"))):
                found = True
                actions = [a for a in actions if a != action]
                if not actions:
                    continue
                statement = {**statement, "Action": actions}
            kept.append(statement)
        item["Statement"] = kept
    if not found:
        raise ValueError(f"{function} has no {action} on {resource} to take out")
    return changed


def for_moto(document: dict[str, Any]) -> dict[str, Any]:
    """The document as moto can evaluate it: without conditions (see the module docstring)."""
    statements = [
        {key: value for key, value in statement.items() if key != "Condition"}
        for statement in _as_list(document["Statement"])
    ]
    return {**document, "Statement": statements}


# -- roles, credentials and enforcement ---------------------------------------------------------
def role_name(function_name: str) -> str:
    """The execution role's name (IAM allows 64 characters)."""
    return f"{function_name}-role"[:64]


def put_role_policies(iam: Any, role: str, documents: list[dict[str, Any]]) -> None:
    """Make ``documents`` the role's inline policies (replacing whatever it had)."""
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        iam.delete_role_policy(RoleName=role, PolicyName=name)
    for index, document in enumerate(d for d in documents if _as_list(d["Statement"])):
        iam.put_role_policy(
            RoleName=role,
            PolicyName=f"policy-{index}",
            PolicyDocument=json.dumps(for_moto(document)),
        )


def execution_role(
    clients: dict[str, Any], function_name: str, documents: list[dict[str, Any]]
) -> tuple[str, dict[str, str]]:
    """Create the function's role with ``documents``, assume it: its ARN and the credentials
    its workers get (Lambda's variables: key, secret and session token)."""
    iam = clients["iam"]
    name = role_name(function_name)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"][
        "Arn"
    ]
    put_role_policies(iam, name, documents)
    credentials = clients["sts"].assume_role(
        RoleArn=arn, RoleSessionName=function_name[:64], DurationSeconds=43200
    )["Credentials"]
    return arn, {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


def create_admin(iam: Any, account: str) -> None:
    """The administrator user whose access key is ``devstack``/``devstack``.

    moto makes random keys; this one is set on moto's own object (moto runs in this process),
    so the credentials every docs command and test uses keep working under enforcement.
    """
    from moto.iam.models import iam_backends

    iam.create_user(UserName=ADMIN_USER)
    iam.put_user_policy(
        UserName=ADMIN_USER,
        PolicyName="administrator",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    key = iam_backends[account]["aws"].create_access_key(ADMIN_USER)
    key.access_key_id, key.secret_access_key = ADMIN_KEY


STATES_KEY: Final = ("ak", "sk")
"""The key moto 5.2.5's Step Functions signs its Lambda calls with (``boto_client_for``)."""


def create_state_machine_identity(iam: Any, account: str, documents: list[dict[str, Any]]) -> None:
    """The identity moto's Step Functions calls Lambda as: a user with the state machine's
    policies (its role on AWS), whose key is the one moto signs with."""
    from moto.iam.models import iam_backends

    iam.create_user(UserName="devstack-states")
    for index, document in enumerate(d for d in documents if _as_list(d["Statement"])):
        iam.put_user_policy(
            UserName="devstack-states",
            PolicyName=f"policy-{index}",
            PolicyDocument=json.dumps(for_moto(document)),
        )
    key = iam_backends[account]["aws"].create_access_key("devstack-states")
    key.access_key_id, key.secret_access_key = STATES_KEY


def set_enforcement(moto_url: str, *, on: bool) -> None:
    """Switch moto's authentication and authorisation on (every request) or off."""
    httpx.post(
        f"{moto_url}/moto-api/reset-auth", content=b"0" if on else b"inf", timeout=30
    ).raise_for_status()


# -- what moto cannot see by itself -------------------------------------------------------------
_TRANSACT_ACTIONS: Final = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _body(response: Any) -> dict[str, Any]:
    """The request's JSON body (moto keeps it as text, bytes or already parsed)."""
    body = response.body
    if isinstance(body, dict):
        return body
    parsed = json.loads(body or "{}")
    return parsed if isinstance(parsed, dict) else {}


def _dynamodb_checks(response: Any) -> list[tuple[str, str]]:
    """(action, resource) pairs DynamoDB authorises for one request."""
    body = _body(response)
    action = response._get_action()
    region, account = response.region, response.current_account

    def table(name: str, index: str | None = None) -> str:
        suffix = f"/index/{index}" if index else ""
        return _arn("dynamodb", region, account, f"table/{name}{suffix}")

    if action in ("TransactWriteItems", "TransactGetItems"):
        return [
            (_TRANSACT_ACTIONS[kind], table(item["TableName"]))
            for entry in body.get("TransactItems", [])
            for kind, item in entry.items()
        ]
    if action in ("BatchGetItem", "BatchWriteItem"):
        return [(action, table(name)) for name in body.get("RequestItems", {})]
    if "TableName" in body:
        return [(action, table(body["TableName"], body.get("IndexName")))]
    return [(action, "*")]


def _json_param(response: Any, *names: str) -> Any:
    body = _body(response)
    for name in names:
        if name in body:
            return body[name]
    return None


def _events_resource(response: Any) -> str:
    entries = _json_param(response, "Entries") or [{}]
    bus = str(entries[0].get("EventBusName") or "default")
    if bus.startswith("arn:"):
        return bus
    return _arn("events", response.region, response.current_account, f"event-bus/{bus}")


def _secret_resource(response: Any) -> str:
    secret = _json_param(response, "SecretId")
    if not secret:
        return "*"
    if str(secret).startswith("arn:"):
        return str(secret)
    try:  # a name: the secret's ARN
        return str(response.backend.describe_secret(secret).arn)
    except Exception:
        return "*"


def _parameter_resource(response: Any) -> str:
    name = _json_param(response, "Name")
    if not name:
        return "*"
    return _parameter_arn(response, str(name))


def _parameter_arn(response: Any, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return _arn("ssm", response.region, response.current_account, f"parameter{name}")


def _ssm_resources(response: Any) -> list[str]:
    """The parameters an SSM request is authorised on: each of GetParameters' ``Names`` (IAM
    refuses the call when any one is not allowed), else its ``Name``."""
    names = _json_param(response, "Names")
    if isinstance(names, list) and names:
        return [_parameter_arn(response, str(name)) for name in names]
    return [_parameter_resource(response)]


def _key_resource(response: Any) -> str:
    key = _json_param(response, "KeyId")
    if not key:
        return "*"
    if str(key).startswith("arn:"):
        return str(key)
    try:  # an id or an alias: the key's ARN
        return str(response.kms_backend.describe_key(key).arn)
    except Exception:
        return "*"


def _function_resource(response: Any) -> str:
    """Lambda's REST paths name the function: ``/2015-03-31/functions/{name}/invocations``."""
    parts = str(response.path).split("/")
    if "functions" not in parts or parts.index("functions") + 1 >= len(parts):
        return "*"
    name = urllib.parse.unquote(parts[parts.index("functions") + 1])
    if name.startswith("arn:"):
        return name
    return _arn("lambda", response.region, response.current_account, f"function:{name}")


def _state_machine_resource(response: Any) -> str:
    return str(_json_param(response, "stateMachineArn", "executionArn") or "*")


_PATCHED: dict[str, Any] = {}


def patch_moto_resources() -> None:
    """Make moto authorise each request against its resource (moto 5.2.5 names only SQS's
    and S3's), a DynamoDB transaction or batch and an SSM GetParameters against each of theirs:
    pinned to ``BaseResponse._determine_resource`` and the mixin's
    ``_authenticate_and_authorize_normal_action``; ``tests/devstack/test_iam.py`` checks it."""
    if _PATCHED:
        return
    from moto.awslambda.responses import LambdaResponse
    from moto.dynamodb.responses import DynamoHandler
    from moto.events.responses import EventsHandler
    from moto.kms.responses import KmsResponse
    from moto.secretsmanager.responses import SecretsManagerResponse
    from moto.ssm.responses import SimpleSystemManagerResponse
    from moto.stepfunctions.responses import StepFunctionResponse

    resolvers: dict[type, Callable[[Any], str]] = {
        EventsHandler: _events_resource,
        SecretsManagerResponse: _secret_resource,
        SimpleSystemManagerResponse: _parameter_resource,
        KmsResponse: _key_resource,
        StepFunctionResponse: _state_machine_resource,
        LambdaResponse: _function_resource,
    }
    for cls, resolve in resolvers.items():
        cls._determine_resource = resolve  # type: ignore[attr-defined]
    original = DynamoHandler._authenticate_and_authorize_normal_action
    _PATCHED["dynamodb"] = original

    def authorise_dynamodb(self: Any, resource: str = "*") -> None:
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
            original(self, resource)  # not enforcing: counted, nothing checked
            return
        for action, arn in _dynamodb_checks(self):
            with _acting_as(self, action):
                original(self, arn)

    DynamoHandler._authenticate_and_authorize_normal_action = authorise_dynamodb  # type: ignore[method-assign]

    from moto.core.authorization import ActionAuthenticatorMixin

    s3_original = ActionAuthenticatorMixin._authenticate_and_authorize_s3_action

    def authorise_s3(
        self: Any, bucket_name: str | None = None, key_name: str | None = None
    ) -> None:
        # A presigned URL carries its signer's rights in the query, not an Authorization header;
        # moto 5.2.5 cannot check those (it fails with a 500): served unchecked (docs: IAM).
        if "Authorization" not in self.headers:
            return
        s3_original(self, bucket_name, key_name)

    ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = authorise_s3  # type: ignore[method-assign]

    lambda_original = LambdaResponse._authenticate_and_authorize_normal_action

    def authorise_lambda(self: Any, resource: str = "*") -> None:
        # IAM's action for the Invoke operation is lambda:InvokeFunction; moto checks lambda:Invoke
        action = self._get_action()
        with _acting_as(self, "InvokeFunction" if action == "Invoke" else action):
            lambda_original(self, resource)

    LambdaResponse._authenticate_and_authorize_normal_action = authorise_lambda  # type: ignore[method-assign]

    ssm_original = SimpleSystemManagerResponse._authenticate_and_authorize_normal_action

    def authorise_ssm(self: Any, resource: str = "*") -> None:
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
            ssm_original(self, resource)  # not enforcing: counted, nothing checked
            return
        for arn in _ssm_resources(self):
            ssm_original(self, arn)

    SimpleSystemManagerResponse._authenticate_and_authorize_normal_action = authorise_ssm  # type: ignore[method-assign]


@contextlib.contextmanager
def _acting_as(response: Any, action: str) -> Iterator[None]:
    """moto checks ``response._get_action()``: answer ``action`` meanwhile."""
    response._get_action = lambda: action
    try:
        yield
    finally:
        del response._get_action
