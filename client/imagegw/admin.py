"""``imagegw admin``: the operator's commands (API keys, per-client limits, provider settings).

They talk to the stack's own resources with ordinary AWS credentials (environment or profile),
never through the public API, which has no admin route:

    imagegw admin keys create CLIENT [--name N]     imagegw admin keys list [CLIENT] [--json]
    imagegw admin keys disable|enable KEY_ID        imagegw admin keys rotate KEY_ID [--grace 24h]
    imagegw admin limits show|set CLIENT ...        imagegw admin providers show|set ...

The stack is ``--stack NAME`` (its outputs are read from CloudFormation), else a running
devstack's ``.devstack/stack.json`` (its moto endpoint and administrator key, as the docs'
``aws`` commands use). They reuse the gateway's own code (the ``image_gateway`` package, which
``make venv`` installs): the key store, the limits ledger, and the model that validates the
providers parameter, so what ``providers set`` writes is what the functions accept.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from imagegw.config import find_stack_file
from imagegw.errors import ConfigError, InputError

_DEVSTACK_REGION = "us-east-1"
_DEVSTACK_CREDENTIALS = ("devstack", "devstack")  # devstack's administrator (devstack/iam.py)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
LIMIT_NAMES = ("requests_per_minute", "max_running_tasks", "max_queued_tasks", "daily_budget_usd")
# The client's routing policy (models/routing.py's RoutingPolicy; checked against it when set)
# and its hedging default: a string and a boolean in its LIMITS item (docs/routing.md).
_HEDGE_WORDS = {"on": True, "true": True, "off": False, "false": False}


def duration(text: str) -> timedelta:
    """``24h``, ``30m``, ``90s``, ``2d`` or plain seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 24h, 30m, 0)")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """``imagegw admin ...`` under the main parser's commands."""
    admin = commands.add_parser(
        "admin", parents=[common], help="operator: API keys, limits, provider settings"
    )
    admin.add_argument("--stack", help="the stack's name (else devstack's .devstack/stack.json)")
    admin.add_argument("--region", help="AWS region (else the environment's or profile's)")
    groups = admin.add_subparsers(dest="admin_group", required=True, metavar="GROUP")

    keys = groups.add_parser("keys", parents=[common], help="API keys").add_subparsers(
        dest="admin_command", required=True, metavar="ACTION"
    )
    create = keys.add_parser("create", parents=[common], help="a new key (printed once)")
    create.add_argument("client")
    create.add_argument("--name", default="default", help="what the key is for (e.g. ci)")
    listing = keys.add_parser("list", parents=[common], help="keys, never the secret")
    listing.add_argument("client", nargs="?")
    for action, text in (("disable", "turn a key off"), ("enable", "turn a key on again")):
        keys.add_parser(action, parents=[common], help=text).add_argument("key_id")
    rotate = keys.add_parser("rotate", parents=[common], help="a new key; the old one ends later")
    rotate.add_argument("key_id")
    rotate.add_argument(
        "--grace",
        type=duration,
        default=timedelta(hours=24),
        help="how long the old key keeps working (default 24h; 0: at once)",
    )

    limits = groups.add_parser("limits", parents=[common], help="per-client limits")
    limit_actions = limits.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    limit_actions.add_parser("show", parents=[common], help="a client's limits").add_argument(
        "client"
    )
    set_limits = limit_actions.add_parser("set", parents=[common], help="change a client's limits")
    set_limits.add_argument("client")
    for name in LIMIT_NAMES:
        set_limits.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            metavar="N|default",
            help="a number, or 'default' for the stack's",
        )
    set_limits.add_argument(
        "--routing",
        metavar="POLICY|default",
        help="the client's routing policy (order, price, latency, reliability, balanced), "
        "or 'default' for the stack's (docs/routing.md)",
    )
    set_limits.add_argument(
        "--hedge",
        metavar="on|off|default",
        help="whether the client's tasks hedge unless a request says (docs/routing.md)",
    )

    providers = groups.add_parser("providers", parents=[common], help="provider settings")
    provider_actions = providers.add_subparsers(
        dest="admin_command", required=True, metavar="ACTION"
    )
    provider_actions.add_parser("show", parents=[common], help="settings in force, and yours")
    put = provider_actions.add_parser(
        "set", parents=[common], help="change settings (validated, diff shown)"
    )
    put.add_argument("--order", metavar="A,B,...", help="default fallback order")
    put.add_argument("--disable", action="append", default=[], metavar="NAME")
    put.add_argument("--enable", action="append", default=[], metavar="NAME")
    put.add_argument("--concurrency", action="append", default=[], metavar="NAME=N")
    put.add_argument(
        "--merge",
        metavar="JSON",
        help='a partial document, e.g. \'{"prices": {"apimodels": {...}}, "breaker": {...}}\'',
    )
    put.add_argument("--reset", action="store_true", help="drop your settings: defaults again")
    put.add_argument("--dry-run", action="store_true", help="show the diff, write nothing")


@dataclass(frozen=True)
class Stack:
    """Where the stack's resources are, and a boto3 session to reach them."""

    table_name: str
    providers_parameter: str
    endpoint_url: str | None
    session: Any
    source: str

    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` (devstack's moto endpoint when local)."""
        return self.session.client(service, endpoint_url=self.endpoint_url)


def find_stack(stack_name: str | None, region: str | None, cwd: Path | None = None) -> Stack:
    """The named stack (CloudFormation outputs), else devstack's state file."""
    try:
        import boto3
    except ImportError:  # pragma: no cover - installed with the repository's venv
        raise ConfigError("imagegw admin needs boto3: pip install boto3") from None
    if stack_name:
        session = boto3.session.Session(region_name=region)
        try:
            described = session.client("cloudformation").describe_stacks(StackName=stack_name)
        except Exception as exc:  # botocore's errors: no credentials, no such stack
            raise ConfigError(f"cannot read stack {stack_name!r}: {exc}") from None
        outputs = {
            o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])
        }
        return Stack(
            table_name=outputs["TasksTableName"],
            providers_parameter=outputs.get("ProvidersParameterName", f"/{stack_name}/providers"),
            endpoint_url=None,
            session=session,
            source=f"stack {stack_name}",
        )
    found = find_stack_file(cwd or Path.cwd())
    if found is None:
        raise ConfigError(
            "no stack: pass --stack NAME (with AWS credentials), or run `make devstack` in the "
            "repository (its .devstack/stack.json is read)"
        )
    state = json.loads(found.read_text())
    outputs = state.get("outputs", {})
    key, secret = _DEVSTACK_CREDENTIALS
    session = boto3.session.Session(
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=region or _DEVSTACK_REGION,
    )
    return Stack(
        table_name=state["table_name"],
        providers_parameter=outputs.get("ProvidersParameterName", "/devstack/providers"),
        endpoint_url=state["moto_url"],
        session=session,
        source=str(found),
    )


class Admin:
    """One run of ``imagegw admin``."""

    def __init__(self, args: argparse.Namespace, stack: Stack, out: TextIO, err: TextIO) -> None:
        self.args = args
        self.stack = stack
        self.out = out
        self.err = err

    def run(self) -> int:
        """Dispatch to the group's action."""
        from image_gateway.errors import GatewayError

        handler = getattr(self, f"{self.args.admin_group}_{self.args.admin_command}")
        try:
            return int(handler())
        except GatewayError as exc:  # not found, conflict, an invalid providers document
            raise InputError(exc.message, code=exc.code) from None

    def emit(self, document: Any, human: str) -> None:
        """JSON with --json, else the human text (stdout)."""
        text = json.dumps(document, indent=2, default=str) if self.args.json else human
        if text:
            self.out.write(text + "\n")

    def say(self, text: str) -> None:
        """A line for people (stderr), unless --quiet."""
        if not self.args.quiet:
            self.err.write(text + "\n")

    # -- keys ----------------------------------------------------------------------------------
    def _keys(self) -> Any:
        from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore

        return DynamoDBApiKeyStore(self.stack.client("dynamodb"), self.stack.table_name)

    def keys_create(self) -> int:
        """``keys create CLIENT``: the key once on stdout, its id on stderr."""
        try:
            api_key, record = self._keys().create(self.args.client, name=self.args.name)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        self.say(f"{record.key_id} for {record.client_id} ({record.name}): shown once, keep it")
        self.emit({"key": api_key, **record.__dict__}, api_key)
        return 0

    def keys_list(self) -> int:
        """``keys list [CLIENT]``."""
        from imagegw.cli import table

        records = self._keys().list_keys(self.args.client)
        rows = [
            [
                r.key_id,
                r.client_id,
                r.name,
                r.created_at[:19],
                (r.last_used_at or "-")[:19],
                "yes"
                if r.disabled
                else (f"after {r.disabled_after[:19]}" if r.disabled_after else "no"),
            ]
            for r in records
        ]
        header = ["key id", "client", "name", "created", "last used", "disabled"]
        self.emit([r.__dict__ for r in records], table(header, rows) if rows else "no keys")
        return 0

    def keys_disable(self) -> int:
        """``keys disable KEY_ID``: refused from the next request on."""
        record = self._keys().set_disabled(self.args.key_id, True)
        self.emit(record.__dict__, f"{record.key_id} disabled")
        return 0

    def keys_enable(self) -> int:
        """``keys enable KEY_ID``."""
        record = self._keys().set_disabled(self.args.key_id, False)
        self.emit(record.__dict__, f"{record.key_id} enabled")
        return 0

    def keys_rotate(self) -> int:
        """``keys rotate KEY_ID``: the new key once on stdout."""
        api_key, record, old = self._keys().rotate(self.args.key_id, grace=self.args.grace)
        self.say(f"{record.key_id} replaces {old.key_id}, which stops at {old.disabled_after}")
        self.emit({"key": api_key, **record.__dict__, "replaces": old.__dict__}, api_key)
        return 0

    # -- limits --------------------------------------------------------------------------------
    def limits_show(self) -> int:
        """``limits show CLIENT``: the client's own limits; unset ones are the stack's."""
        from image_gateway.adapters.dynamodb_limits import DynamoDBUsageLedger

        ledger = DynamoDBUsageLedger(self.stack.client("dynamodb"), self.stack.table_name)
        overrides = ledger.overrides(self.args.client).__dict__
        lines = [f"{n:<20} {'default' if v is None else v}" for n, v in overrides.items()]
        self.emit({"client_id": self.args.client, **overrides}, "\n".join(lines))
        return 0

    def limits_set(self) -> int:
        """``limits set CLIENT --NAME N|default`` (and ``--routing``, ``--hedge``): in force at the
        client's next request."""
        from image_gateway.adapters.dynamodb_client_queue import limits_key

        sets: list[str] = []
        removes: list[str] = []
        values: dict[str, dict[str, Any]] = {}
        for name in LIMIT_NAMES:
            given = getattr(self.args, name)
            if given is None:
                continue
            if given == "default":
                removes.append(name)
                continue
            values[f":{name}"] = {"N": str(_limit_value(name, given))}
            sets.append(f"{name} = :{name}")
        for name, value in (
            ("routing", _routing(self.args.routing)),
            ("hedge", _hedge(self.args.hedge)),
        ):
            if value is None:
                continue
            if value == "default":
                removes.append(name)
                continue
            values[f":{name}"] = {"BOOL": value} if name == "hedge" else {"S": value}
            sets.append(f"{name} = :{name}")
        if not sets and not removes:
            raise InputError(
                "nothing to set: give --requests-per-minute N, --routing POLICY, --hedge on, ..."
            )
        update = " ".join(
            part
            for part in (
                "SET " + ", ".join(sets) if sets else "",
                "REMOVE " + ", ".join(removes) if removes else "",
            )
            if part
        )
        request: dict[str, Any] = {
            "TableName": self.stack.table_name,
            "Key": limits_key(self.args.client, "LIMITS"),
            "UpdateExpression": update,
        }
        if values:
            request["ExpressionAttributeValues"] = values
        self.stack.client("dynamodb").update_item(**request)
        return self.limits_show()

    # -- providers -----------------------------------------------------------------------------
    def _read(self, name: str) -> str | None:
        ssm = self.stack.client("ssm")
        try:
            return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
        except ssm.exceptions.ParameterNotFound:
            return None

    def providers_show(self) -> int:
        """``providers show``: the settings in force, and which of them are the operator's."""
        from image_gateway.providers.settings import effective_document, operator_parameter

        defaults = self._read(self.stack.providers_parameter) or "{}"
        operator = self._read(operator_parameter(self.stack.providers_parameter))
        effective = json.loads(effective_document(defaults, operator))
        mine = json.loads(operator) if operator else {}
        self.emit(
            {"effective": effective, "operator": mine},
            json.dumps(effective, indent=2, sort_keys=True)
            + f"\n# yours ({operator_parameter(self.stack.providers_parameter)}): "
            + (json.dumps(mine, sort_keys=True) if mine else "none, the stack's defaults apply"),
        )
        return 0

    def providers_set(self) -> int:
        """``providers set``: the change validated by the functions' own model, a diff, then
        the operator's parameter written (never the stack's)."""
        from image_gateway.providers.directory import ProviderConfig
        from image_gateway.providers.settings import effective_document, operator_parameter

        name = operator_parameter(self.stack.providers_parameter)
        defaults = self._read(self.stack.providers_parameter) or "{}"
        before_mine = json.loads(self._read(name) or "{}")
        mine = {} if self.args.reset else _changed(before_mine, self.args, defaults)
        before = effective_document(defaults, json.dumps(before_mine) if before_mine else None)
        after = effective_document(defaults, json.dumps(mine) if mine else None)
        ProviderConfig.parse(after)  # GatewayError(providers_config_invalid) before any write
        diff = "".join(
            difflib.unified_diff(
                _pretty(before).splitlines(keepends=True),
                _pretty(after).splitlines(keepends=True),
                "in force",
                "after this change",
            )
        )
        if self.args.dry_run or (not diff and mine == before_mine):
            self.emit({"written": False, "effective": json.loads(after)}, diff or "no change")
            return 0
        self.stack.client("ssm").put_parameter(
            Name=name,
            Value=json.dumps(mine, sort_keys=True),
            Type="String",
            Overwrite=True,
            Description="imagegw admin providers set: the operator's settings over the stack's",
        )
        self.say(f"written to {name}; the functions read it within a minute")
        self.emit({"written": True, "effective": json.loads(after)}, diff or "no change")
        return 0


def _pretty(document: str) -> str:
    return json.dumps(json.loads(document), indent=2, sort_keys=True) + "\n"


def _limit_value(name: str, text: str) -> int | float:
    try:
        value = float(text) if name == "daily_budget_usd" else int(text)
    except ValueError:
        flag = "--" + name.replace("_", "-")
        raise InputError(f"{flag} wants a number or 'default', got {text!r}") from None
    if value < 0:  # 0 is allowed: a running limit of 0 pauses the client (docs/limits.md)
        raise InputError(f"--{name.replace('_', '-')} must be 0 or more, got {text!r}")
    return value


def _routing(text: str | None) -> str | None:
    """``--routing``: a policy the functions accept, or 'default'."""
    from typing import get_args

    from image_gateway.models.routing import RoutingPolicy

    if text is None or text == "default":
        return text
    policies = get_args(RoutingPolicy)
    if text not in policies:
        raise InputError(f"--routing wants one of {', '.join(policies)} or 'default', got {text!r}")
    return text


def _hedge(text: str | None) -> bool | str | None:
    """``--hedge``: on or off (true/false), or 'default'."""
    if text is None or text == "default":
        return text
    if text.lower() not in _HEDGE_WORDS:
        raise InputError(f"--hedge wants on, off or 'default', got {text!r}")
    return _HEDGE_WORDS[text.lower()]


def _changed(mine: dict[str, Any], args: argparse.Namespace, defaults: str) -> dict[str, Any]:
    """The operator's document with this command's changes."""
    from image_gateway.providers.settings import overlay

    changed = dict(mine)
    if args.merge:
        try:
            partial = json.loads(args.merge)
        except ValueError as exc:
            raise InputError(f"--merge is not JSON: {exc}") from None
        if not isinstance(partial, dict):
            raise InputError("--merge wants a JSON object")
        changed = overlay(changed, partial)
    if args.order:
        changed["order"] = [n.strip() for n in args.order.split(",") if n.strip()]
    if args.disable or args.enable:
        effective = overlay(json.loads(defaults), changed)
        disabled = [n for n in effective.get("disabled", []) if n not in args.enable]
        changed["disabled"] = disabled + [n for n in args.disable if n not in disabled]
    for item in args.concurrency:
        provider, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise InputError(f"--concurrency wants NAME=N, got {item!r}")
        changed["concurrency"] = {**changed.get("concurrency", {}), provider: int(value)}
    return changed


def main(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``imagegw admin``: find the stack, run the action."""
    try:
        import image_gateway  # noqa: F401 (the gateway's own code: key store, ledger, model)
    except ImportError:
        raise ConfigError(
            "imagegw admin needs the gateway's package: run it from the repository's "
            ".venv (make venv), or pip install -e layers/common boto3"
        ) from None
    stack = find_stack(args.stack, args.region)
    return Admin(args, stack, out, err).run()
