"""Examples of the API's answers, shown in the OpenAPI document (checked against their models
by tests/unit/api/test_openapi_document.py)."""

from __future__ import annotations

from typing import Any

TASK_ID = "tsk_01JH2Z6Q8K3F4V5W6X7Y8Z9A0B"
BATCH_ID = "batch_0123456789abcdef0123456789abcdef"
TIME = "2026-12-01T12:02:10.929000Z"
TASK_EXAMPLE: dict[str, Any] = {
    "task_id": TASK_ID,
    "status": "queued",
    "operation": "generate",
    "provider": "apimart",
    "path": None,
    "finished_by": None,
    "model": "gpt-image-2",
    "prompt": "A lighthouse on a cliff at dawn, watercolour",
    "quality": "auto",
    "output_format": "png",
    "background": "auto",
    "input_images": 0,
    "size_requested": "16:9@2K",
    "size_sent": None,
    "size_produced": None,
    "cost_estimate_usd": None,
    "created_at": TIME,
    "submitted_at": None,
    "finished_at": None,
    "duration_ms": None,
    "expected_seconds": 30.0,
    "outputs": [],
    "error": None,
    "metadata": {"order": "42"},
    "attempts": [],
    "history": [{"status": "queued", "at": TIME, "by": "api"}],
    "source": None,
    "inputs": [],
    "url": f"/v1/tasks/{TASK_ID}",
}
LIST_EXAMPLE: dict[str, Any] = {
    "tasks": [
        {
            "task_id": TASK_ID,
            "status": "succeeded",
            "operation": "generate",
            "provider": "apimart",
            "created_at": TIME,
            "finished_at": "2026-12-01T12:02:12.613000Z",
            "path": "callback",
            "finished_by": "callback",
            "prompt": "A lighthouse on a cliff at dawn, watercolour",
            "quality": "auto",
            "output_format": "png",
            "background": "auto",
            "input_images": 0,
            "size_requested": "16:9@2K",
            "size_produced": "2048x1152",
            "cost_estimate_usd": 0.02,
            "duration_ms": 1684,
            "error": None,
            "output_url": "https://images.example.com/outputs/tsk_01JH.png?X-Amz-Signature=...",
            "thumbnail_url": "https://images.example.com/outputs/tsk_01JH.thumb.jpg?X-Amz-...",
        }
    ],
    "next_cursor": None,
}
PROVIDERS_EXAMPLE: dict[str, Any] = {
    "default_order": ["apimart", "mountsea-async"],
    "providers": [
        {
            "name": "apimart",
            "enabled": True,
            "default_rank": 1,
            "capabilities": {"modes": ["edit", "generate"], "callback": True, "max_images": 16},
            "price": None,
            "health": {
                "state": "open",
                "until": "2026-12-01T12:02:40.929000Z",
                "changed_at": TIME,
                "recent_calls": 20,
                "success_rate": 0.65,
            },
            "measured": {
                "latency_p50_seconds": 18.4,
                "latency_p90_seconds": 31.0,
                "success_rate": 0.65,
                "samples": 40,
                "window": "15m",
                "by_tier": [
                    {
                        "operation": "generate",
                        "tier": "1K",
                        "latency_p50_seconds": 18.4,
                        "latency_p90_seconds": 31.0,
                        "success_rate": 0.65,
                        "samples": 40,
                        "window": "15m",
                    }
                ],
            },
        }
    ],
}
UPLOADS_EXAMPLE: dict[str, Any] = {
    "upload_id": "upl_01JH2Z6Q8K",
    "uploads": [
        {
            "ref": "s3://images-bucket/inputs/client-1/uploads/upl_01JH2Z6Q8K/0.png",
            "url": "https://images-bucket.s3.amazonaws.com/inputs/...&X-Amz-Signature=...",
            "method": "PUT",
            "headers": {"content-type": "image/png", "content-length": "5242880"},
            "expires_at": "2026-12-01T12:17:10Z",
        }
    ],
}
USAGE_EXAMPLE: dict[str, Any] = {
    "client_id": "my-app",
    "day": "2026-12-01",
    "spent_usd": 0.05,
    "daily_budget_usd": 5.0,
    "budget_remaining_usd": 4.95,
    "running_tasks": 100,
    "max_running_tasks": 100,
    "queued_tasks": 240,
    "max_queued_tasks": 10000,
    "rate": {
        "limit_per_minute": 300,
        "used": 3,
        "remaining": 297,
        "window_start": "2026-12-01T12:02:00Z",
        "window_seconds": 60,
        "resets_at": "2026-12-01T12:03:00Z",
    },
}

# One error per status a route can answer: (code, message) of a typical one.

BATCH_EXAMPLE: dict[str, Any] = {
    "batch_id": BATCH_ID,
    "status": "in_progress",
    "counts": {
        "total": 120,
        "queued": 40,
        "running": 30,
        "succeeded": 47,
        "failed": 1,
        "cancelled": 0,
        "expired": 0,
        "invalid": 2,
    },
    "metadata": {"shop": "42"},
    "estimated_cost_usd": 2.95,
    "final_cost_usd": 1.175,
    "created_at": "2026-12-01T12:00:00Z",
    "completed_at": None,
    "results_url": None,
}
