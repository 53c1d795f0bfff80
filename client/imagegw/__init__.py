"""Client of the Image Task Gateway: ``Gateway`` (sync), ``imagegw.aio.AsyncGateway``, the CLI.

from imagegw import Gateway, read_requests

gw = Gateway()                                   # IMAGEGW_URL/IMAGEGW_KEY, or devstack
task = gw.edit("add a moon", images=["photo.png"], mask="mask.png", size="1024x1024")
task.wait(on_update=lambda t: print(t.status))   # TaskFailed if it ends without an image
task.download("out/")                            # sha256-checked

batch = gw.batch(read_requests("catalogue.jsonl"))  # POST /v1/batches
batch.wait()                                     # counts kept by the gateway: one GET a look
batch.download("out/")                           # out/<custom_id>.png; a re-run skips saved
"""

from imagegw.batch import Batch, BatchInfo, BatchWaitTimeout, ResultLine, read_requests
from imagegw.client import Gateway, Task
from imagegw.errors import (
    ApiError,
    BadRequest,
    ConfigError,
    Conflict,
    ConnectionFailed,
    ImagegwError,
    InputError,
    IntegrityError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    TaskFailed,
    Unauthorized,
    Unprocessable,
    WaitTimeout,
)
from imagegw.models import Output, ProviderInfo, TaskInfo, TaskRow
from imagegw.polling import Backoff

__all__ = [
    "ApiError",
    "Backoff",
    "BadRequest",
    "Batch",
    "BatchInfo",
    "BatchWaitTimeout",
    "ConfigError",
    "Conflict",
    "ConnectionFailed",
    "Gateway",
    "ImagegwError",
    "InputError",
    "IntegrityError",
    "NotFound",
    "Output",
    "PayloadTooLarge",
    "ProviderInfo",
    "RateLimited",
    "ResultLine",
    "ServerError",
    "Task",
    "TaskFailed",
    "TaskInfo",
    "TaskRow",
    "Unauthorized",
    "Unprocessable",
    "WaitTimeout",
    "read_requests",
]
