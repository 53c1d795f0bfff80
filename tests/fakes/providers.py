"""ScriptedProviders: the provider port without HTTP, scripted per provider.

The real adapters (``Provider`` objects from the directory) still decide modes, sizes and
capabilities; only the I/O is replaced. Each provider has a script: what its create call does
(an id, or an error), the statuses its tasks go through, and what a sync call answers. The
fake enforces what ``ProviderClient`` enforces: the capability check before anything is sent,
and disabled or keyless providers failing as retryable errors.
"""

from __future__ import annotations

import base64
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from image_gateway.errors import ProviderError, ProviderRejected, ProviderUnavailable
from image_gateway.models.request import ImageRequest
from image_gateway.providers.base import (
    InputOpener,
    Provider,
    ProviderInputs,
    ProviderState,
    ProviderStatus,
    ResultImage,
)
from image_gateway.providers.directory import ProviderDirectory

StatusStep = ProviderState | ProviderError | Callable[[], ProviderStatus]
"""One answer of a status call: a state (SUCCEEDED carries the script's image), an error to
raise, or a function that builds the whole answer."""


@dataclass
class ProviderScript:
    """What one provider does."""

    create_error: ProviderError | None = None
    statuses: list[StatusStep] = field(default_factory=lambda: [ProviderState.SUCCEEDED])
    """Answers of successive status calls; the last one repeats."""
    image_b64: str | None = None
    image_url: str | None = None
    sync_error: ProviderError | None = None
    failure: ProviderError | None = None
    """The error of a FAILED status."""
    batch_error: ProviderError | None = None
    """Raised by every batch status call (the tasks are then read one by one)."""
    while_working: Callable[[], object] | None = None
    """Runs once while the next create or sync call is at the provider (after it was sent,
    before it answers): stages a race, e.g. the client cancelling the task meanwhile."""


@dataclass
class ProviderCall:
    """One call the fake received (for assertions, like the simulator's journal)."""

    provider: str
    kind: str
    request: ImageRequest | None = None
    inputs: ProviderInputs | None = None
    callback_url: str | None = None
    provider_task_id: str | None = None
    provider_task_ids: list[str] | None = None
    """The ids one batch status call asked for."""


class ScriptedProviderCalls:
    """One provider's client (satisfies ``ports.ProviderCalls``)."""

    def __init__(self, owner: ScriptedProviders, provider: Provider) -> None:
        self.provider = provider
        self._owner = owner

    @property
    def _script(self) -> ProviderScript:
        return self._owner.script(self.provider.name)

    def create(
        self, request: ImageRequest, inputs: ProviderInputs, callback_url: str | None
    ) -> str:
        """A new provider task id, or the scripted error (nothing sent if it cannot honour)."""
        self.provider.check(request)
        self._owner.journal(
            ProviderCall(self.provider.name, "create", request, inputs, callback_url)
        )
        self._owner.run_while_working(self.provider.name)
        if self._script.create_error is not None:
            raise self._script.create_error
        return self._owner.new_task(self.provider.name)

    def status(self, provider_task_id: str) -> ProviderStatus:
        """The next scripted answer for that task."""
        name = self.provider.name
        self._owner.journal(ProviderCall(name, "status", provider_task_id=provider_task_id))
        return self._answer(provider_task_id)

    def batch_status(self, provider_task_ids: list[str]) -> dict[str, ProviderStatus]:
        """Each known task's next answer (one call)."""
        self._owner.journal(
            ProviderCall(
                self.provider.name, "batch_status", provider_task_ids=list(provider_task_ids)
            )
        )
        if self._script.batch_error is not None:
            raise self._script.batch_error
        known = [i for i in provider_task_ids if i in self._owner.tasks]
        return {i: self._answer(i) for i in known}

    def run_sync(
        self, request: ImageRequest, inputs: ProviderInputs, open_input: InputOpener
    ) -> ProviderStatus:
        """The finished image, after reading every input the call would upload."""
        self.provider.check(request)
        call = self.provider.sync_call(request, inputs)
        for _, ref in call.files:  # read what a multipart upload would stream
            with open_input(ref) as (_, stream, _):
                stream.read()
        self._owner.journal(ProviderCall(self.provider.name, "sync", request, inputs))
        self._owner.run_while_working(self.provider.name)
        if self._script.sync_error is not None:
            raise self._script.sync_error
        return self._succeeded()

    def _answer(self, provider_task_id: str) -> ProviderStatus:
        if self._owner.tasks.get(provider_task_id) != self.provider.name:
            # as every adapter classifies a provider's "no such task" answer
            raise self.provider.task_missing(f"unknown task {provider_task_id}")
        steps = self._script.statuses
        index = min(self._owner.polls_of(provider_task_id), len(steps) - 1)
        step = steps[index]
        if isinstance(step, ProviderError):
            raise step
        if callable(step):
            return step()
        if step is ProviderState.SUCCEEDED:
            return self._succeeded()
        if step is ProviderState.FAILED:
            error = self._script.failure or ProviderRejected(
                f"{self.provider.name}: task failed", provider=self.provider.name
            )
            return ProviderStatus(state=step, raw_status="failed", error=error)
        return ProviderStatus(state=step, raw_status=step.value)

    def _succeeded(self) -> ProviderStatus:
        script = self._script
        if script.image_url is not None:
            image = ResultImage(url=script.image_url)
        else:
            image = ResultImage(b64=script.image_b64 or self._owner.default_image_b64)
        return ProviderStatus(state=ProviderState.SUCCEEDED, raw_status="done", images=[image])


class ScriptedProviders:
    """Every provider's fake client (satisfies ``ports.ProviderClients``)."""

    def __init__(self, directory: ProviderDirectory, default_image: bytes) -> None:
        self._directory = directory
        self.default_image_b64 = base64.b64encode(default_image).decode()
        self.scripts: dict[str, ProviderScript] = {}
        self.calls: list[ProviderCall] = []
        self.tasks: dict[str, str] = {}  # provider task id -> provider
        self.keyless: set[str] = set()
        self._polls: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def script(self, name: str) -> ProviderScript:
        """The provider's script (created with defaults on first use)."""
        return self.scripts.setdefault(name, ProviderScript())

    def client(self, name: str) -> ScriptedProviderCalls:
        """The provider's client; retryable errors for disabled or keyless providers."""
        provider = self._directory.provider(name)
        if not self._directory.enabled(name):
            raise ProviderError(
                f"{name} is not configured or disabled in this stack",
                provider=name,
                retryable=True,
                code="provider_disabled",
            )
        if name in self.keyless:
            raise ProviderError(
                f"no API key for {name}",
                provider=name,
                retryable=True,
                code="provider_key_missing",
            )
        return ScriptedProviderCalls(self, provider)

    def run_while_working(self, name: str) -> None:
        """Run (once) the provider's ``while_working`` action, if it has one."""
        script = self.script(name)
        action, script.while_working = script.while_working, None
        if action is not None:
            action()

    def journal(self, call: ProviderCall) -> None:
        """Record a call (the fake's journal)."""
        with self._lock:
            self.calls.append(call)

    def polls_of(self, provider_task_id: str) -> int:
        """Status answers given so far for the task (then counts this one)."""
        with self._lock:
            seen = self._polls.get(provider_task_id, 0)
            self._polls[provider_task_id] = seen + 1
        return seen

    def new_task(self, provider: str) -> str:
        """A fresh provider task id."""
        with self._lock:
            task_id = f"{provider}-task-{next(self._ids)}"
            self.tasks[task_id] = provider
        return task_id

    def calls_to(self, provider: str, kind: str | None = None) -> list[ProviderCall]:
        """The calls one provider received (optionally of one kind)."""
        return [c for c in self.calls if c.provider == provider and kind in (None, c.kind)]


def unavailable(provider: str, status: int = 503) -> ProviderUnavailable:
    """The retryable error of a provider answering ``status``."""
    return ProviderUnavailable(
        f"{provider}: HTTP {status}", provider=provider, provider_code=str(status)
    )
