"""Provider simulator: every provider dialect over real HTTP, with real images.

    from devstack.simulator import ProviderSimulator

    sim = ProviderSimulator(host="127.0.0.1", port=0, time_scale=0.02, api_key="sim-key")
    sim.start()                               # serves in a daemon thread
    sim.provider_base_url("apimart")          # f"{sim.base_url}/apimart"
    sim.provider_base_url("mountsea-async")   # f"{sim.base_url}/mountsea"
    sim.stop()

Or standalone: `python -m devstack.simulator --port 8090 --time-scale 0.02`.

================= ============ ===================================================== =============
provider          base path    endpoints (below the base path)                       module
================= ============ ===================================================== =============
`apimart`         `/apimart`   async: `POST /v1/images/generations`,                 `apimart`
                               `GET /v1/tasks/{id}`, `POST /v1/tasks/batch`;
                               webhook POSTed to `<webhook>/callback`
`mountsea-async`  `/mountsea`  async: `POST /openai/images`,                         `mountsea`
                               `GET /openai/tasks?taskId=`
`mountsea-compat` `/mountsea`  sync OpenAI clone: `POST /openai/v1/images/           `openai_compat`
                               generations` (JSON), `.../edits` (multipart)
`pmock`           `/pmock`     async, `{code, message, data, traceId}` envelope:     `pmock`
                               `POST /api/ai/openai/images/generate`,
                               `GET /api/ai/openai/tasks?taskId=`
`apimodels`       `/apimodels` `POST /api/v1/images/generations` (JSON),             `apimodels`
                               `POST /api/v1/images/edits` (multipart): sync with a
                               `size` WxH, else async (`GET /api/v1/images/
                               generations?task_id=`, POST to `callback_url`)
`openai`          `/openai`    sync: `POST /v1/images/generations` (JSON),           `openai_compat`
                               `POST /v1/images/edits` (multipart)
================= ============ ===================================================== =============

Each provider speaks its documented wire format (see the modules' docstrings) and renders
PNG/JPEG/WebP images of the requested size (`render.py`). A task's status follows the clock;
a synchronous endpoint holds the request as long. Latencies are in `tasks.APIMART_LATENCY_S`,
`tasks.MOUNTSEA_LATENCY_S` (mountsea-async, mountsea-compat, pmock, openai) and
`tasks.APIMODELS_LATENCY_S`, multiplied by `time_scale`.

Fault markers: put any of these in the prompt. `[sim:NAME=PROVIDER]` scopes a marker to one
provider (one of the names above), e.g. `[sim:create-503=apimart]`. Create markers answer in
the provider's own error shape (pmock: its envelope, HTTP 503; apimodels, openai,
mountsea-compat: `{"error": {...}}`; apimart, mountsea-async: `{"error": "upstream
unavailable"}`).

=========================== ==================================================================
marker                      effect
=========================== ==================================================================
`[sim:create-503]`          create answers HTTP 503 (`upstream unavailable`)
`[sim:create-timeout]`      create waits 30 s (real) before answering: clients time out first
`[sim:create-garbage]`      create answers HTTP 200 with the non-JSON body `<html>oops</html>`
`[sim:moderation]`          create is rejected with the provider's moderation error (HTTP 400;
                            pmock: HTTP 200 with code 400)
`[sim:fail]`                the task ends `failed`: "generation failed (simulated)", code 50001;
                            a sync request answers HTTP 500 after its latency
`[sim:cancelled]`           the task ends `cancelled` (code 50002; apimodels reports `failed`)
`[sim:timeout]`             the task ends `timeout` (mountsea, pmock; apimart and apimodels
                            report `failed`), code 50003
`[sim:never]`               the task stays `processing` forever; a sync request is held 30 s
                            (or until the simulator stops), then answered HTTP 504
`[sim:poll-garbage]`        async: once terminal, the task query answers HTTP 200 with
                            truncated JSON
`[sim:bad-image]`           the task completes but its "image" bytes are not an image
`[sim:noise]`               full-frame seeded noise, fast PNG encoder: realistically large files
`[sim:url-string]`          apimart: `result.images[0].url` is a string, not a list
`[sim:unreachable-result]`  apimart: the result URL names a port nothing listens on
`[sim:duplicate-callback]`  apimart, apimodels: the terminal callback is delivered twice
`[sim:late-callback]`       apimart, apimodels: one more callback 2 s x time_scale (>= 0.2 s)
                            later
`[sim:no-callback]`         apimart, apimodels: no callback is sent
`[sim:latency=S]`           the task takes S real seconds (not scaled by time_scale)
`[sim:first-creates-503=K]` the first K creates of this exact prompt at each provider answer
                            as `[sim:create-503]`, later ones work (one image of n fails)
`[sim:stall-first-file=S]`  apimart: the first GET of the result file is held S real
                            seconds (not scaled) before it is answered; later GETs at once
=========================== ==================================================================

A task whose input image or mask cannot be downloaded or decoded ends `failed` with a message
saying which input and why (mountsea and pmock errorCode 40002; a sync request answers 400).

Admin endpoints (no auth): `GET /_sim/health`, `GET /_sim/requests` (every provider request:
provider, method, path, query, `body` (parsed JSON, or for multipart/form-data its fields and
its files as filename, content type and byte count; long strings cut), header names, status),
`GET /_sim/callbacks` (every webhook attempt), `POST /_sim/reset` (clears both lists).
Runtime profiles change a provider while the simulator runs: `POST /_sim/profile` with
`{"provider": "apimart", "latency_seconds": 3, "fail_rate": 0.1}` gives its new tasks that
latency (real seconds, not scaled; a prompt's `[sim:latency=S]` still wins) and makes that
share of its creates answer 503; `GET /_sim/profile` shows them, `DELETE` resets them all.
"""

from devstack.simulator.server import ProviderSimulator

__all__ = ["ProviderSimulator"]
