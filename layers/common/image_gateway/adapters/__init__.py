"""Adapters: each port of ``image_gateway.ports`` on AWS (boto3) or over HTTP; only here."""
