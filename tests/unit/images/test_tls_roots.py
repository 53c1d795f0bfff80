"""The roots the HTTP clients trust, as the layer ships them: one file per certificate under
OpenSSL's hash names, read at the handshake. Certificates are made with the ``openssl`` command
(which the layer build needs too); the server is a local TLS socket."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest
from image_gateway.tls_roots import context_for, split_bundle, write_hashed_roots


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)  # noqa: S603, S607


def _ca(folder: Path, name: str) -> Path:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=folder,
    )  # fmt: skip
    return folder / f"{name}.pem"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two CAs, and a certificate for localhost signed by the first."""
    folder = tmp_path_factory.mktemp("pki")
    _ca(folder, "Test Root A")
    _ca(folder, "Test Root B")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr", cwd=folder,
    )  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "Test Root A.pem",
        "-CAkey", "Test Root A.key", "-CAcreateserial", "-days", "2",
        "-extfile", "san.ext", "-out", "server.pem", cwd=folder,
    )  # fmt: skip
    return folder


@pytest.fixture
def server(pki: Path) -> Iterator[int]:
    """A TLS server on 127.0.0.1 presenting the localhost certificate to one client."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        try:
            with context.wrap_socket(connection, server_side=True) as tls:
                tls.sendall(b"hello")
        except (ssl.SSLError, OSError):
            pass  # the client refused the certificate

    thread = threading.Thread(target=serve)
    thread.start()
    yield listener.getsockname()[1]
    thread.join(timeout=10)
    listener.close()


def _handshake(context: ssl.SSLContext, port: int) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.recv(5)


def _bundle(tmp_path: Path, *pems: Path) -> Path:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("".join(p.read_text() for p in pems))
    return bundle


def test_a_server_whose_root_is_in_the_hashed_directory_is_trusted(
    pki: Path, server: int, tmp_path: Path
) -> None:
    # Given a bundle of two roots, written as a hashed directory
    bundle = _bundle(tmp_path, pki / "Test Root B.pem", pki / "Test Root A.pem")
    assert write_hashed_roots(bundle, tmp_path / "roots") == 2
    # When a client with that directory's context connects to the server signed by root A
    answer = _handshake(context_for(tmp_path / "roots"), server)
    # Then the chain verified and the server's bytes came through
    assert answer == b"hello"


def test_a_server_whose_root_is_not_in_the_hashed_directory_is_refused(
    pki: Path, server: int, tmp_path: Path
) -> None:
    # Given a hashed directory of root B only
    write_hashed_roots(_bundle(tmp_path, pki / "Test Root B.pem"), tmp_path / "roots")
    # When a client connects to the server signed by root A / Then verification fails
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(context_for(tmp_path / "roots"), server)


def test_the_hashed_directory_is_read_at_the_handshake_not_when_the_context_is_made(
    pki: Path, tmp_path: Path
) -> None:
    # Given certifi's bundle as a hashed directory
    count = write_hashed_roots(Path(certifi.where()), tmp_path / "roots")
    # When a context is made from it
    context = context_for(tmp_path / "roots")
    # Then every root has its file, and none was parsed yet
    assert len(list((tmp_path / "roots").iterdir())) == count > 100
    assert context.cert_store_stats()["x509_ca"] == 0
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname


def test_without_a_hashed_directory_the_whole_bundle_is_loaded_as_httpx_does(
    tmp_path: Path,
) -> None:
    # Given no hashed directory (a development tree) / When a context is made
    context = context_for(tmp_path / "absent")
    # Then certifi's every root is in it
    expected = len(split_bundle(Path(certifi.where()).read_text()))
    assert context.cert_store_stats()["x509_ca"] == expected
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname


def test_roots_whose_subjects_hash_alike_get_numbered_files(pki: Path, tmp_path: Path) -> None:
    # Given a bundle holding the same root twice (as a renewed root keeps its subject)
    bundle = _bundle(tmp_path, pki / "Test Root A.pem", pki / "Test Root A.pem")
    # When it is written / Then both are kept, as <hash>.0 and <hash>.1
    write_hashed_roots(bundle, tmp_path / "roots")
    names = sorted(p.name for p in (tmp_path / "roots").iterdir())
    assert [n.rsplit(".", 1)[1] for n in names] == ["0", "1"]
    assert names[0].rsplit(".", 1)[0] == names[1].rsplit(".", 1)[0]
