"""The CA roots every HTTP client of the process trusts: certifi's bundle, read lazily.

Loading certifi's bundle into a TLS context (what httpx does by default) parses all of its
~120 certificates when the context is made: about 200 M instructions, 0.28x of a bare
``import boto3`` (valgrind, built layer, Python 3.13), paid by the first event of every
function that builds an HTTP client (the finaliser, the poll step, dispatch, webhook delivery).
The layer build (layers/common/Makefile) therefore also writes the same certificates one per
file under OpenSSL's subject-hash names (a ``capath`` directory, :data:`HASHED_ROOTS`): OpenSSL
then reads only the roots a handshake's chain names, when it needs them. The trusted set is the
same; a development tree, which has no such directory, loads the bundle as httpx does.

``python -m image_gateway.tls_roots BUNDLE DEST`` writes the directory (needs the ``openssl``
command, which computes the names).
"""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

HASHED_ROOTS = Path(__file__).with_name("hashed_roots")
"""certifi's roots as a ``capath`` directory, made by the layer build (absent in development)."""

_BEGIN, _END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


def context_for(hashed_roots: Path = HASHED_ROOTS) -> ssl.SSLContext:
    """A client TLS context (httpx's defaults) trusting the roots in ``hashed_roots`` or, when
    there is no such directory, certifi's bundle loaded whole."""
    if hashed_roots.is_dir():
        return ssl.create_default_context(capath=str(hashed_roots))
    import httpx  # the development tree's path (and httpx's own default)

    return httpx.create_ssl_context(trust_env=False)


def split_bundle(bundle: str) -> list[str]:
    """The PEM certificates of a bundle, each with its BEGIN and END lines."""
    return [
        _BEGIN + block.split(_BEGIN, 1)[1].split(_END, 1)[0] + _END + "\n"
        for block in bundle.split(_END)
        if _BEGIN in block
    ]


def subject_hash(pem: str) -> str:
    """OpenSSL's hash of the certificate's subject: the name a ``capath`` lookup opens."""
    done = subprocess.run(
        ["openssl", "x509", "-noout", "-subject_hash"],  # noqa: S607 (the build host's openssl)
        input=pem,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def write_hashed_roots(bundle: Path, dest: Path) -> int:
    """Write every certificate of ``bundle`` to ``dest`` as ``<subject hash>.<n>`` (``n``
    counts certificates whose subjects hash alike); how many were written."""
    dest.mkdir(parents=True, exist_ok=True)
    certificates = split_bundle(bundle.read_text())
    for pem in certificates:
        name = subject_hash(pem)
        index = 0
        while (dest / f"{name}.{index}").exists():
            index += 1
        (dest / f"{name}.{index}").write_text(pem)
    return len(certificates)


if __name__ == "__main__":  # the layer build: python -m image_gateway.tls_roots BUNDLE DEST
    written = write_hashed_roots(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{written} roots written to {sys.argv[2]}")
