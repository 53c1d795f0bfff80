"""Provider simulator: apimart and mountsea-async over real HTTP, with real images.

    from devstack.simulator import ProviderSimulator

    sim = ProviderSimulator(host="127.0.0.1", port=0, time_scale=0.02, api_key="sim-key")
    sim.start()                               # serves in a daemon thread
    sim.provider_base_url("apimart")          # f"{sim.base_url}/apimart"
    sim.provider_base_url("mountsea-async")   # f"{sim.base_url}/mountsea"
    sim.stop()

Or standalone: `python -m devstack.simulator --port 8090 --time-scale 0.02`.

Each provider speaks its documented wire format (see `apimart.py` and `mountsea.py`), renders
PNG/JPEG/WebP images of the requested size (`render.py`) and, for apimart, POSTs the terminal
task to `<webhook>/callback`. A task's status follows the clock: latencies are in
`tasks.APIMART_LATENCY_S` / `tasks.MOUNTSEA_LATENCY_S`, multiplied by `time_scale`.

Fault markers: put any of these in the prompt. `[sim:NAME=PROVIDER]` scopes a marker to one
provider (`apimart` or `mountsea-async`), e.g. `[sim:create-503=apimart]`.

=========================== ==================================================================
marker                      effect
=========================== ==================================================================
`[sim:create-503]`          create answers HTTP 503 `{"error": "upstream unavailable"}`
`[sim:create-timeout]`      create waits 30 s (real) before answering: clients time out first
`[sim:create-garbage]`      create answers HTTP 200 with the non-JSON body `<html>oops</html>`
`[sim:moderation]`          create is rejected with the provider's moderation error (HTTP 400)
`[sim:fail]`                the task ends `failed`: "generation failed (simulated)", code 50001
`[sim:cancelled]`           the task ends `cancelled` (code 50002)
`[sim:timeout]`             the task ends `timeout` (mountsea; apimart reports `failed`), 50003
`[sim:never]`               the task stays `processing` forever
`[sim:poll-garbage]`        once terminal, the task query answers HTTP 200 with truncated JSON
`[sim:bad-image]`           the task completes but its "image" bytes are not an image
`[sim:noise]`               full-frame seeded noise, fast PNG encoder: realistically large files
`[sim:url-string]`          apimart: `result.images[0].url` is a string, not a list
`[sim:duplicate-callback]`  apimart: the terminal callback is delivered twice
`[sim:late-callback]`       apimart: one more callback 2 s x time_scale (>= 0.2 s) later
`[sim:no-callback]`         apimart: no callback is sent
`[sim:latency=S]`           the task takes S real seconds (not scaled by time_scale)
=========================== ==================================================================

A task whose input image or mask cannot be downloaded or decoded ends `failed` with a message
saying which input and why (mountsea errorCode 40002).

Admin endpoints (no auth): `GET /_sim/health`, `GET /_sim/requests` (every provider request:
provider, method, path, query, `body` (parsed JSON, long strings cut), header names, status),
`GET /_sim/callbacks` (every webhook attempt), `POST /_sim/reset` (clears both lists).
"""

from devstack.simulator.server import ProviderSimulator

__all__ = ["ProviderSimulator"]
