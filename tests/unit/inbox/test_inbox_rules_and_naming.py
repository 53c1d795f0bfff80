"""Inbox rules, naming conventions and notifications: pure logic, no AWS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from image_gateway.adapters.s3_inbox import S3InboxObjects as InboxObjects
from image_gateway.errors import UploadRejected
from image_gateway.inbox.naming import UploadKind, classify_key, find_companions, photo_stem
from image_gateway.inbox.objects import ObjectCreated, SourceSuperseded
from image_gateway.inbox.rules import InboxRules, RulesSource
from image_gateway.service.upload_edit import upload_identity

from devstack.template import load_template


def _rules(*rules: dict[str, Any]) -> InboxRules:
    return InboxRules.parse(json.dumps({"rules": list(rules)}))


def test_the_longest_matching_prefix_wins() -> None:
    rules = _rules(
        {"prefix": "", "prompt": "any"},
        {"prefix": "products/", "prompt": "products"},
        {"prefix": "products/shoes/", "prompt": "shoes"},
    )
    rule = rules.rule_for("products/shoes/red.png")
    assert rule is not None and rule.prompt == "shoes"
    other = rules.rule_for("misc/a.png")
    assert other is not None and other.prompt == "any"


def test_no_rule_matches_outside_every_prefix() -> None:
    assert _rules({"prefix": "products/", "prompt": "p"}).rule_for("other/a.png") is None


@pytest.mark.parametrize(
    "rule",
    [
        {"prefix": "a/", "prompt": "p", "output_prefix": "../escape/"},
        {"prefix": "a/", "prompt": "p", "output_prefix": "inbox/"},
        {"prefix": "a/", "prompt": "p", "output_prefix": "outputs/no-slash"},
        {"prefix": "a/", "prompt": "p", "size": "99999x1"},
        {"prefix": "a/", "prompt": "p", "output_format": "png", "output_compression": 50},
        {"prefix": "a/", "prompt": "", "size": "auto"},
        {"prefix": "a/", "prompt": "p", "colour": "red"},
    ],
    ids=["dotdot", "not-outputs", "no-slash", "bad-size", "png-compression", "empty", "unknown"],
)
def test_a_rule_that_could_never_make_a_valid_request_is_refused(rule: dict[str, Any]) -> None:
    with pytest.raises(UploadRejected) as refused:
        _rules(rule)
    assert refused.value.code == "inbox_rules_invalid"


def test_the_output_key_follows_the_prefix_and_never_overwrites_an_earlier_result() -> None:
    rule = _rules({"prefix": "products/", "prompt": "p", "output_prefix": "outputs/x/"}).rules[0]
    stem = rule.output_key_stem("products/shoes/red one.jpeg", client_id="inbox", task_id="tsk_1")
    assert stem == "outputs/x/shoes/red one.tsk_1"
    default = _rules({"prefix": "products/", "prompt": "p"}).rules[0]
    assert default.output_key_stem("products/a.png", client_id="c", task_id="t") == (
        "outputs/c/products/a.t"
    )


def test_the_default_rules_in_the_template_are_valid() -> None:
    value = load_template()["Resources"]["InboxRulesParameter"]["Properties"]["Value"]
    assert InboxRules.parse(value).rules


class _FakeSsm:
    def __init__(self, value: str) -> None:
        self.value = value
        self.calls = 0

    def get_parameter(self, Name: str) -> dict[str, Any]:
        self.calls += 1
        return {"Parameter": {"Name": Name, "Value": self.value}}


def test_rules_are_read_once_per_cache_period_and_edits_apply_after_it() -> None:
    ssm = _FakeSsm(json.dumps({"rules": [{"prefix": "a/", "prompt": "one"}]}))
    cached = RulesSource(
        lambda: ssm.get_parameter(Name="/r")["Parameter"]["Value"], ttl_seconds=3600
    )
    assert cached.current().rules[0].prompt == "one"
    ssm.value = json.dumps({"rules": [{"prefix": "a/", "prompt": "two"}]})
    assert cached.current().rules[0].prompt == "one" and ssm.calls == 1
    fresh = RulesSource(lambda: ssm.get_parameter(Name="/r")["Parameter"]["Value"], ttl_seconds=0)
    assert fresh.current().rules[0].prompt == "two"


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("products/shoe.png", UploadKind.PHOTO),
        ("products/notes.txt", UploadKind.PHOTO),
        ("products/shoe.mask.png", UploadKind.MASK),
        ("products/shoe.MASK.PNG", UploadKind.MASK),
        ("products/shoe.ref1.jpg", UploadKind.REFERENCE),
        ("products/shoe.ref15.webp", UploadKind.REFERENCE),
        ("products/", UploadKind.FOLDER),
    ],
)
def test_keys_are_classified_by_the_naming_convention(key: str, kind: UploadKind) -> None:
    assert classify_key(key) is kind
    assert kind.edited is (kind is UploadKind.PHOTO)


def test_companions_pair_by_stem_and_references_sort_by_number() -> None:
    siblings = [
        "p/shoe.png",
        "p/shoe.ref10.png",
        "p/shoe.ref2.jpg",
        "p/shoe.mask.png",
        "p/shoe.backup.png",
        "p/shoes.ref1.png",
    ]
    companions = find_companions("p/shoe.png", siblings)
    assert companions.mask == "p/shoe.mask.png"
    assert companions.references == ["p/shoe.ref2.jpg", "p/shoe.ref10.png"]
    assert photo_stem("p/shoe.png") == "p/shoe" and photo_stem("noext") == "noext"


def test_an_eventbridge_notification_is_parsed_with_either_etag_spelling() -> None:
    event = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {
            "bucket": {"name": "inbox"},
            "object": {"key": "a b.png", "size": 3, "eTag": "abc", "version-id": "null"},
        },
    }
    created = ObjectCreated.from_eventbridge(event)
    assert (created.bucket, created.key, created.etag, created.version_id) == (
        "inbox",
        "a b.png",
        "abc",
        None,
    )
    with pytest.raises(ValueError):
        ObjectCreated.from_eventbridge({**event, "detail-type": "Object Deleted"})


def test_the_same_bytes_at_the_same_key_have_the_same_identity() -> None:
    assert upload_identity("b", "k", "e1", None) == upload_identity("b", "k", "e1", "v2")
    assert upload_identity("b", "k", "e1", None) != upload_identity("b", "k", "e2", None)
    assert len(upload_identity("b", "k" * 1024, "e", None)) <= 128


class _FailingS3:
    def __init__(self, code: str) -> None:
        self.code = code

    def head_object(self, **_: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": self.code, "Message": "no"}}, "HeadObject")


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("403", "source_unreadable"),
        ("AccessDenied", "source_unreadable"),
        ("404", "source_not_found"),
    ],
)
def test_an_unreadable_or_deleted_object_is_a_rejection_not_a_retry(
    code: str, outcome: str
) -> None:
    objects = InboxObjects(_FailingS3(code), "inbox")
    with pytest.raises(UploadRejected) as rejected:
        objects.head(ObjectCreated(bucket="inbox", key="a.png", etag="e"))
    assert rejected.value.code == outcome


def test_an_overwritten_object_is_superseded_and_throttling_is_retried() -> None:
    with pytest.raises(SourceSuperseded):
        InboxObjects(_FailingS3("412"), "inbox").head(ObjectCreated(bucket="inbox", key="a"))
    with pytest.raises(ClientError):
        InboxObjects(_FailingS3("SlowDown"), "inbox").head(ObjectCreated(bucket="inbox", key="a"))
