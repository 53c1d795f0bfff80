"""Run the provider simulator on its own: `python -m devstack.simulator [--port N] ...`."""

from __future__ import annotations

import argparse
import threading

from devstack.simulator.server import ProviderSimulator


def main(argv: list[str] | None = None) -> None:
    """Start the simulator, print its URLs, serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m devstack.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--time-scale", type=float, default=0.02)
    parser.add_argument("--api-key", default="sim-key")
    args = parser.parse_args(argv)
    simulator = ProviderSimulator(args.host, args.port, args.time_scale, args.api_key)
    simulator.start()
    print(f"provider simulator on {simulator.base_url}", flush=True)
    for provider in simulator.providers:
        print(f"  {provider}: {simulator.provider_base_url(provider)}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()


if __name__ == "__main__":
    main()
