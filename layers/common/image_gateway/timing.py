"""TimingPolicy: every wait, retry, batch size and cache age of the gateway, in one place.

Read by every flow (``deps.timing``); docs/timing.md's table is this model plus the stack
parameters, and ``tests/template/test_timing_policy.py`` pins the AWS-side numbers of
``template.yaml`` and ``statemachines/poll.asl.json`` (state machine retries, queue redrive,
visibility timeouts) to the values here. Durations are real-world seconds: flows multiply them
by ``Settings.time_scale`` (devstack runs at 0.02).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepRetry:
    """One ``Retry`` entry of a state machine Task state."""

    errors: tuple[str, ...]
    interval_seconds: int
    max_attempts: int
    backoff_rate: float


@dataclass(frozen=True)
class TimingPolicy:
    """The gateway's timing and retry policy (defaults are what a deployed stack uses)."""

    # -- the poll loop (Step Functions) ---------------------------------------------------------
    poll_backoff_factor: float = 1.5
    """Each poll waits the provider's ``poll_interval_seconds`` x factor^attempt ..."""
    poll_backoff_steps: int = 6
    """... with the exponent capped at this many attempts ..."""
    poll_wait_cap_seconds: float = 30.0
    """... and never longer than this (nor past the task's deadline)."""
    poll_step_retries: tuple[StepRetry, ...] = (
        StepRetry(
            (
                "Lambda.ServiceException",
                "Lambda.AWSLambdaException",
                "Lambda.SdkClientException",
                "Lambda.TooManyRequestsException",
            ),
            interval_seconds=2,
            max_attempts=3,
            backoff_rate=2.0,
        ),
        StepRetry(("States.TaskFailed",), interval_seconds=5, max_attempts=2, backoff_rate=2.0),
    )
    """The poll step's ``Retry`` in the state machine (then its Catch fails the task)."""

    # -- provider answers -----------------------------------------------------------------------
    max_bad_responses: int = 3
    """Garbage from a provider's status endpoint this many times running fails the task."""
    max_download_failures: int = 3
    """A task's downloads that fail this many times (a timeout, a refused connection, an
    unreachable host) fail it: ``provider_download_failed`` for its result,
    ``input_download_failed`` for an input a sync call sends, instead of waiting for expiry."""
    callback_grace_factor: float = 2.0
    """A callback provider silent for this many expected latencies gets one poll (sweeper) ..."""
    callback_grace_floor_seconds: float = 8.0
    """... but never before this many real seconds, whatever the time scale: devstack's 0.02
    turns 2 x 40 s into 1.6 s, less than a loaded machine may take to carry a callback through
    its queue, and the sweeper would finish the task the callback was about to."""

    # -- the sweeper ------------------------------------------------------------------------------
    sweep_recheck_seconds: float = 60.0
    """An open task the sweeper looked at is looked at again after this (or at its deadline)."""
    event_recheck_seconds: float = 30.0
    """A finished task's event is re-emitted by the sweeper only if still missing after this."""
    event_recheck_floor_seconds: float = 5.0
    """... but never sooner than this many real seconds, whatever the time scale: devstack's
    0.02 turns 30 s into 0.6 s, less than a loaded machine may take between the winner's status
    change and its event's record, and the sweeper would emit the event a second time."""
    sweep_due_per_shard: int = 100
    """Due tasks read per index shard per page; a sweep reads page after page ..."""
    sweep_run_seconds: float = 45.0
    """... while pages come back full, until it has run this long (real seconds; the sweep
    runs every minute, so one run ends before the next starts; the function's timeout, 300 s,
    leaves room for the last page)."""
    batch_status_size: int = 20
    """Tasks per batch status query (apimart documents no limit; kept small)."""

    # -- hand-off (the dispatch function) --------------------------------------------------------
    provider_busy_retry_seconds: float = 5.0
    """A provider at its concurrency limit: the attempt is queued again after at least this ..."""
    provider_busy_growth: float = 0.5
    """... or this share of the time it has waited for the provider so far, if longer (each
    wait grows with the last: few looks at a long-busy provider, no requeue storm) ..."""
    provider_busy_retry_cap_seconds: float = 60.0
    """... never longer than this ..."""
    provider_busy_jitter_fraction: float = 0.2
    """... drawn in +/- this fraction of itself, so tasks that met a full provider together
    do not come back together."""
    provider_busy_spill_seconds: float = 120.0
    """An attempt that has waited this long for a busy provider moves on to the next provider
    of its fallbacks that can take it (none left: it keeps waiting, within its deadline)."""
    slot_lease_margin_seconds: float = 60.0
    """A concurrency lease lasts the call's timeout plus this (a crashed holder's runs out)."""

    # -- per-client limits -------------------------------------------------------------------------
    queue_full_retry_after_seconds: float = 60.0
    """Retry-After of a 429 ``queue_full`` (when queued tasks start is not known)."""
    queue_recheck_seconds: float = 900.0
    """A task still queued this long after it was submitted (or last looked at) is looked at
    by the sweeper: started if its client has a free place, its attempt sent again if it was
    started but never reached a provider (a crash between two writes loses nothing)."""
    hold_check_seconds: float = 1800.0
    """A client's hold (its running or queued place) still unclaimed this long after its
    reservation is checked by the sweeper: given back when its task was never written (the
    submit died between the two writes), else claimed. Longer than any function's timeout
    (15 min at most), so a submit still at work is never taken for a dead one; real seconds
    (not scaled by ``Settings.time_scale``: function timeouts are not)."""

    # -- provider health: the circuit breaker (each provider may override in the parameter) ----
    breaker_failures: int = 5
    """Retryable failures of one provider within the window that open its breaker ..."""
    breaker_window_seconds: float = 60.0
    """... counted over this window (a success starts the count again) ..."""
    breaker_cooldown_seconds: float = 30.0
    """... and how long it stays open before one trial call is let through (half-open)."""
    breaker_recent_calls: int = 20
    """The last calls a provider's recent success rate is read from (``GET /v1/providers``)."""

    # -- queues (template.yaml) -------------------------------------------------------------------
    dispatch_max_receives: int = 3
    """Deliveries of a dispatch message before it goes to the dead-letter queue."""
    dispatch_visibility_seconds: int = 1800
    """Dispatch queue visibility: 6 x the dispatch function's timeout, as Lambda recommends."""
    inbox_max_receives: int = 3
    """Deliveries of an inbox notification before it goes to the dead-letter queue."""
    inbox_visibility_seconds: int = 720
    """Inbox queue visibility: 6 x the upload-edit function's timeout."""
    finalize_max_receives: int = 3
    """Deliveries of a verified callback before it goes to the dead-letter queue (the sweeper
    still finishes or expires the task)."""
    finalize_visibility_seconds: int = 360
    """Finalize queue visibility: 6 x the finalize function's timeout; a failed or crashed
    finaliser's callback is delivered again after this."""

    # -- signed webhooks to callers (the webhook delivery function) ------------------------------
    webhook_retry_schedule_seconds: tuple[float, ...] = (
        5.0,
        30.0,
        120.0,
        600.0,
        1800.0,
        3600.0,
        7200.0,
        14400.0,
        28800.0,
        43200.0,
    )
    """Waits before delivery attempts 2, 3, ... (11 attempts over 27.7 h); then dead-letter."""
    webhook_jitter_fraction: float = 0.1
    """Each wait is drawn in +/- this fraction of itself, so retries of many tasks spread out."""
    webhook_timeout_seconds: float = 15.0
    """One delivery attempt: connect, send and answer within this (then it is retried)."""
    webhook_secret_overlap_seconds: float = 86400.0
    """After a rotation the previous secret keeps signing for this long."""
    webhook_max_receives: int = 3
    """Deliveries of a webhook message (a crashed attempt) before the dead-letter queue."""
    webhook_visibility_seconds: int = 120
    """Webhook queue visibility: 6 x the delivery function's timeout."""

    # -- the OpenAI-compatible surface (the compat function, a Lambda function URL) -------------
    compat_wait_seconds: float = 540.0
    """Longest a compat call waits for its task (the function's timeout is 600 s); then a 504
    carrying the task id, and the task goes on."""
    compat_look_cap_seconds: float = 10.0
    """After the first look (at the provider's expected latency), each look waits the provider's
    poll interval x ``poll_backoff_factor`` per look, at most this long."""
    compat_answer_margin_seconds: float = 15.0
    """Kept of the invocation's remaining time to answer (read the image, base64 it)."""
    compat_dispatch_safety_delay_seconds: int = 900
    """The OpenAI-compatible call makes its task's first attempt itself and leaves the queued
    attempt this long on the dispatch queue (SQS's longest delay), longer than the function may
    run (600 s): if the function died mid-attempt, the dispatch function makes it then."""

    # -- caches and clients -----------------------------------------------------------------------
    providers_cache_seconds: float = 60.0
    """How long the providers parameter is cached (edits apply within this)."""
    inbox_rules_cache_seconds: float = 60.0
    """How long the inbox rules parameter is cached."""
    secrets_cache_seconds: float = 300.0
    """How long a Secrets Manager value is cached per execution environment."""
    aws_max_attempts: int = 3
    """boto3 standard retry mode: attempts per AWS call (throttling, 5xx)."""
    aws_connect_timeout_seconds: float = 5.0
    """boto3 connect timeout."""
    task_write_attempts: int = 5
    """Optimistic-concurrency attempts of one task update before giving up."""
    ledger_write_attempts: int = 8
    """Tries of one per-client ledger transaction that met another, with full-jitter backoff
    (20 ms doubling: about 2.5 s at most in all); then 503 ``busy`` with Retry-After."""

    def poll_wait(self, base_interval: float, attempt: int) -> float:
        """Seconds before poll ``attempt + 1`` (real-world, unscaled)."""
        interval = base_interval * self.poll_backoff_factor ** min(attempt, self.poll_backoff_steps)
        return min(interval, self.poll_wait_cap_seconds)

    def compat_look_wait(self, base_interval: float, look: int) -> float:
        """Seconds between look ``look`` and the next of a waiting compat call (unscaled)."""
        interval = base_interval * self.poll_backoff_factor ** min(look, self.poll_backoff_steps)
        return min(interval, self.compat_look_cap_seconds)

    def webhook_wait(self, attempt: int, draw: float) -> float | None:
        """Seconds before delivery attempt ``attempt + 1`` (None: ``attempt`` was the last).

        ``draw`` in [0, 1) places the wait within the jitter band (0.5 = no jitter).
        """
        if attempt > len(self.webhook_retry_schedule_seconds):
            return None
        base = self.webhook_retry_schedule_seconds[attempt - 1]
        return base * (1 + self.webhook_jitter_fraction * (2 * draw - 1))

    def callback_grace(self, expected_latency: float) -> float:
        """Seconds after submission when a silent callback provider gets polled (unscaled)."""
        return expected_latency * self.callback_grace_factor


DEFAULT_TIMING = TimingPolicy()
"""The policy every function uses."""
