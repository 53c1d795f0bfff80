"""Adapters: each port of ``image_gateway.ports`` on AWS (botocore) or over HTTP; only here."""
