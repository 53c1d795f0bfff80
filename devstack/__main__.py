"""``python -m devstack up`` (keep a local stack running) or ``python -m devstack demo``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from devstack.stack import DevStack, StackConfig
from devstack.template import TEMPLATE_PATH


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
    from devstack.demo import TRY_COMMAND

    config = StackConfig(
        time_scale=args.time_scale,
        log_level=args.log_level or "INFO",
        iam=not args.no_iam,
        template_path=args.template,
    )
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
        # Every name the README's examples use (template.yaml's outputs, as on AWS).
        print(f"table      {info.table_name}   (TasksTableName)")
        print(f"images     s3://{info.bucket_name}/outputs/   (ImagesBucketName)")
        print(f"inbox      s3://{info.outputs['InboxBucketName']}/products/   (upload to edit)")
        print(f"rules      ssm {info.outputs['InboxRulesParameterName']}")
        print(f"bus        {info.event_bus_name}   (EventBusName)")
        print(f"keys       {info.outputs['ProviderKeysSecretArn']}   (ProviderKeysSecretArn)")
        print(f"state      {config.state_file}")
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
