"""``python -m devstack up`` (keep a local stack running) or ``python -m devstack demo``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from devstack.stack import DevStack, StackConfig
from devstack.template import TEMPLATE_PATH


class Stopped(Exception):
    """SIGINT or SIGTERM arrived: stop the stack (its workers and state file) and exit."""


def _stop(signum: int, frame: FrameType | None) -> None:
    # Once: a second signal must not cut the stop itself short (it takes a second or two).
    for each in (signal.SIGINT, signal.SIGTERM):
        signal.signal(each, signal.SIG_IGN)
    raise Stopped(signal.Signals(signum).name)


def stop_on_signals() -> None:
    """Stop cleanly on SIGINT and SIGTERM. A shell starts a background job (``&``) with
    SIGINT ignored, and Python dies of SIGTERM without cleaning up: both are set here, so
    ``kill`` and Ctrl-C end every worker process and remove the state file."""
    for each in (signal.SIGINT, signal.SIGTERM):
        signal.signal(each, _stop)


def shown(path: Path) -> str:
    """``path`` relative to the current folder when inside it (what a reader can type)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("command", choices=["up", "demo"])
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.02,
        help="multiplies provider latencies and gateway waits (default 0.02)",
    )
    parser.add_argument("--log-level", default=None, help="Lambda log level (default WARNING)")
    parser.add_argument(
        "--state-file",
        type=Path,
        default=StackConfig.state_file,
        help="where `up` writes the running stack's URLs and key (imagegw reads it)",
    )
    parser.add_argument(
        "--no-iam",
        action="store_true",
        help="debugging only: do not enforce the functions' IAM roles (every request allowed)",
    )
    parser.add_argument(
        "--template",
        type=Path,
        default=TEMPLATE_PATH,
        help="the SAM template to run (default: the repository's template.yaml)",
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from devstack.demo import main as demo_main

        return demo_main()
    config = StackConfig(
        time_scale=args.time_scale,
        log_level=args.log_level or "INFO",
        state_file=args.state_file,
        iam=not args.no_iam,
        template_path=args.template,
    )
    stop_on_signals()
    try:
        return _run(config)
    except Stopped:
        return 0


def _run(config: StackConfig) -> int:
    from devstack.demo import TRY_COMMAND

    with DevStack(config) as stack:
        info = stack.info
        assert info is not None
        print(f"API        {info.api_url}")
        print(f"API key    {info.api_key}   (client {info.client_id})")
        print(f"console    {info.console_url}   (paste the API key)")
        print(f"openai     {info.openai_base_url}   (OpenAI(base_url=..., api_key=<API key>))")
        print(f"webhooks   {info.webhook_secret}   (verify callback_url deliveries with it)")
        print(f"moto       {info.moto_url}   (AWS_ENDPOINT_URL for the aws CLI / boto3)")
        print(f"simulator  {info.simulator_url}")
        # Every name the docs' examples use (template.yaml's outputs, as on AWS).
        print(f"table      {info.table_name}   (TasksTableName)")
        print(f"images     s3://{info.bucket_name}/outputs/   (ImagesBucketName)")
        print(f"inbox      s3://{info.outputs['InboxBucketName']}/products/   (upload to edit)")
        print(f"rules      ssm {info.outputs['InboxRulesParameterName']}")
        print(f"bus        {info.event_bus_name}   (EventBusName)")
        print(f"keys       {info.outputs['ProviderKeysSecretArn']}   (ProviderKeysSecretArn)")
        print(f"state      {shown(config.state_file) if config.state_file else 'none'}")
        credentials = " ".join(
            f"{name}={os.environ[name]}"
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
        )
        print(f"export AWS_ENDPOINT_URL={info.moto_url} {credentials}")
        print(f"try        {TRY_COMMAND}")
        print("Ctrl-C to stop.", flush=True)
        try:
            while True:  # short sleeps: a Ctrl-C caught by another thread is seen within 1 s
                time.sleep(1)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
