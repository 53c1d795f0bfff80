"""A pinned, smoke-tested patch of moto 5.2.5: ``TransactWriteItems`` without a table copy.

moto makes a transaction all-or-nothing by deep-copying every table it touches before it starts
and putting the copy back when an item's condition fails. That copy costs the whole table, so a
transaction slows down with every item stored (about 8 MB and several seconds of one core per
transaction once a table holds a few thousand tasks: the stalls the capacity audit saw in
devstack, and an O(n²) contract test). DynamoDB's transactions cost the same whatever the table
holds; so must devstack's.

The patch keeps moto's own transaction code and changes one thing: the table is not copied.
Instead, each item the transaction names is copied before moto runs, and on a cancelled or
refused transaction exactly those items are put back (an item the transaction created is
removed). The answer (``CancellationReasons``, validation errors) is moto's, unchanged.
``tests/devstack/test_moto_patches.py`` pins the behaviour on the moto version in
``requirements-dev.txt``.

A second patch, in :func:`apply` too: moto answers a ``Query`` of the table by a partition key
by listing and sorting *every* item of the table and keeping those of that key (``Table.query``
calls ``Table.all_items()``): about 10 us per stored item, so 0.2 s a query at 20,000 items,
under the lock that makes devstack's DynamoDB requests atomic (``local_aws.AtomicDynamoDB``).
Every client queue, slot, measurement and batch read is such a query, so devstack slowed down
and paused as its table grew (issue 20's audit; a 2,000-task run and a 2,000-line batch did not
finish in 40 minutes). DynamoDB reads one partition; so does the patch: during a base-table
query, ``all_items()`` of that table yields only the partition's items (moto keeps them in
``items[hash_key]``), in the same order. A query of an index gets, in the same way, only the
items whose index key attributes equal the query's (one pass over the table's items with a
dict look-up each, no sort: 236 ms a query at 20,000 items before, 38-67 ms after; moto then
checks and sorts those few as before). DynamoDB keeps the index; moto has none to read, and
keeping one in step with every write path of moto would be a much larger patch.

A third patch (:func:`apply_server`) is for moto's server: it finds the service of every
request by listing moto's package folder (``os.listdir`` plus an ``isdir`` for each of about
150 services) and then matching hundreds of URL patterns, under one lock that every request
takes: 0.75-0.9 ms of CPU per request on this machine (DynamoDB, SQS), one request at a time,
about a tenth of what a request costs devstack in all. The answer depends only on the
request's host, so it is remembered per host (misses are not: moto prints its warning each
time, as before).
"""

from __future__ import annotations

import copy
import functools
import inspect
import threading
from typing import Any

_PATCHED = "_image_gateway_cheap_transactions"
_SERVER_PATCHED = "_image_gateway_backend_per_host"


class _NoTableCopy:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend: a Table is "copied" as
    itself (its items are restored one by one by the patch); everything else is copied."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, self._table_type):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def apply() -> None:
    """Patch moto's DynamoDB backend in this process (idempotent)."""
    from moto.dynamodb import models as ddb_models
    from moto.dynamodb.models.table import Table

    backend = ddb_models.DynamoDBBackend
    if getattr(backend, _PATCHED, False):
        return
    original = backend.transact_write_items
    setattr(ddb_models, "copy", _NoTableCopy(Table))  # noqa: B010 (a module attribute)

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _save_items(self, transact_items)
        try:
            original(self, transact_items)
        except Exception:
            _restore_items(self, saved)
            raise

    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _patch_partition_queries(Table)
    setattr(backend, _PATCHED, True)


# What the query running on this thread reads: (table, partition key) for a base-table query,
# (table, ((attribute, value), ...)) for an index query.
_querying = threading.local()


def _index_key(table: Any, index_name: str, hash_key: Any, arguments: dict[str, Any]) -> Any:
    """The (attribute, value) pairs an index query's items must have, or None when unsure."""
    conditions = arguments.get("hash_key_conditions")
    if conditions:
        return tuple((name, value) for name, value in conditions)
    for index in table.all_indexes():
        if index.name == index_name:
            hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
            return ((hashes[0], hash_key),) if len(hashes) == 1 else None
    return None  # an unknown index: moto's own query says so


def _matching_items(table: Any, pairs: tuple[tuple[str, Any], ...]) -> list[Any]:
    """The table's items whose attributes equal every pair's value, in no particular order."""
    wanted = [(name, value.type, value.value) for name, value in pairs]
    parts = table.items.values() if table.range_key_attr else [table.items]
    found = []
    for part in parts:
        for item in part.values():
            attrs = item.attrs
            for name, kind, raw in wanted:
                got = attrs.get(name)
                if got is None or got.type != kind or got.value != raw:
                    break
            else:
                found.append(item)
    return found


def _patch_partition_queries(table_type: Any) -> None:
    """``Table.query`` reads the items of its key (a partition, or an index key's items), not
    every item of the table sorted."""
    original_query = table_type.query
    original_all_items = table_type.all_items
    signature = inspect.signature(original_query)

    @functools.wraps(original_query)
    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # moto's backend passes index_name by position: read it as the signature binds it
        arguments = signature.bind(self, hash_key, *args, **kwargs).arguments
        index_name = arguments.get("index_name")
        if index_name:
            pairs = _index_key(self, index_name, hash_key, arguments)
            reading = None if pairs is None else (self, ("index", pairs))
        else:
            reading = None if hash_key is None else (self, ("partition", hash_key))
        _querying.reading = reading
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _querying.reading = None

    @functools.wraps(original_all_items)
    def all_items(self: Any) -> Any:
        reading = getattr(_querying, "reading", None)
        if reading is None or reading[0] is not self:
            return original_all_items(self)
        kind, key = reading[1]
        if kind == "index":  # moto filters and sorts these as it did the whole table
            return _matching_items(self, key)
        found = self.items.get(key)
        if found is None:
            return []
        if not self.range_key_attr:
            return [found]
        return sorted(found.values(), key=lambda x: (x.hash_key, x.range_key))

    table_type.query = query
    table_type.all_items = all_items


def _save_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(table, hash, range, copy of the item or None) for every item the transaction names."""
    saved: list[tuple[Any, ...]] = []
    for entry in transact_items:
        for op_type, op in entry.items():
            table_name = op.get("TableName")
            if table_name not in backend.tables:
                continue
            table = backend.tables[table_name]
            if op_type == "Put":
                attrs = op.get("Item", {})
                key = {table.hash_key_attr: attrs.get(table.hash_key_attr)}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs.get(table.range_key_attr)
            else:
                key = op.get("Key", {})
            try:
                hash_key, range_key = backend.get_keys_value(table, key)
            except Exception:  # noqa: S112 - a malformed key: moto's own call refuses it
                continue
            current = table.get_item(hash_key, range_key)
            saved.append((table, hash_key, range_key, copy.deepcopy(current)))
    return saved


def _restore_items(backend: Any, saved: list[tuple[Any, ...]]) -> None:
    """Put every saved item back as it was before the transaction."""
    for table, hash_key, range_key, item in reversed(saved):
        if item is None:
            if table.get_item(hash_key, range_key) is not None:
                table.delete_item(hash_key, range_key)
        elif range_key is not None:
            table.items[hash_key][range_key] = item
        else:
            table.items[hash_key] = item


_ATOMIC_PATCHED = "_image_gateway_atomic_requests"


def apply_atomic_requests() -> None:
    """In this process, moto answers one DynamoDB request at a time (idempotent).

    DynamoDB applies each request atomically; moto does not: two threads' conditional writes
    of one item can both pass their condition, and one write is lost. devstack's server takes
    a lock per DynamoDB request (``local_aws.AtomicDynamoDB``); this is the same for moto used
    in-process (``mock_aws``), where the contract tests race threads on one item.
    """
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler, _ATOMIC_PATCHED, False):
        return
    original = DynamoHandler.call_action
    lock = threading.Lock()

    @functools.wraps(original)
    def call_action(self: Any) -> Any:
        with lock:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    setattr(DynamoHandler, _ATOMIC_PATCHED, True)


def apply_server() -> None:
    """Patch moto's server in this process to find a host's backend once (idempotent)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if getattr(DomainDispatcherApplication, _SERVER_PATCHED, False):
        return
    original = DomainDispatcherApplication.get_backend_for_host
    found: dict[str, Any] = {}  # host -> backend name: static for the process

    @functools.wraps(original)
    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host is None:
            return None
        backend = found.get(host)
        if backend is None:
            backend = original(self, host)
            if backend is not None:
                found[host] = backend
        return backend

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]
    setattr(DomainDispatcherApplication, _SERVER_PATCHED, True)
