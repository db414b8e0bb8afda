"""Debian's nginx on 127.0.0.1, for the image tests and benchmarks/cog_tiles.py: static files
with Range support (or a reverse proxy to another local server, such as moto's S3), and an
access log of every request (its line, status, bytes sent, protocol) to count what a reader
asked for. Optionally TLS with HTTP/2, from a test CA made here.

    with serve(www) as server:              # http://127.0.0.1:<port>/cog.tif
        url = server.url("cog.tif")         # /copy-3/cog.tif serves the same file under
        ...                                 # another name: a cold open for GDAL's caches
        server.entries()                    # [Entry(method="GET", status=206, ...), ...]

Containers reach it with the host's network (runtime.run_clean's default).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# One JSON object a line: what the benchmark and the tests read back.
LOG_FORMAT = (
    'escape=json \'{"request":"$request","status":$status,"bytes_sent":$bytes_sent,'
    '"body_bytes_sent":$body_bytes_sent,"protocol":"$server_protocol","range":"$http_range"}\''
)


@dataclass(frozen=True)
class Entry:
    """One request as nginx logged it."""

    method: str
    path: str
    status: int
    bytes_sent: int  # headers and body, what went on the wire ($bytes_sent)
    body_bytes: int  # the body alone ($body_bytes_sent)
    protocol: str  # HTTP/1.1, HTTP/2.0
    range: str  # the Range header, "" for none


@dataclass(frozen=True)
class Tls:
    """A test CA and a server certificate for 127.0.0.1 and localhost, signed by it."""

    ca: Path
    cert: Path
    key: Path


def make_tls(where: Path) -> Tls:
    """A CA and a server certificate (cryptography, moto's own dependency) in ``where``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    where.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gdal-lambda test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    tls = Tls(ca=where / "ca.pem", cert=where / "server.pem", key=where / "server.key")
    tls.ca.write_bytes(ca.public_bytes(pem))
    tls.cert.write_bytes(cert.public_bytes(pem))
    tls.key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    for path in (tls.ca, tls.cert, tls.key):
        path.chmod(0o644)
    return tls


@dataclass
class Nginx:
    port: int
    scheme: str
    log: Path

    def url(self, path: str = "") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def entries(self) -> list[Entry]:
        """Every request logged so far (nginx writes a line when a request ends)."""
        out = []
        for line in self.log.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            method, _, rest = item["request"].partition(" ")
            out.append(
                Entry(
                    method=method,
                    path=rest.rsplit(" ", 1)[0],
                    status=int(item["status"]),
                    bytes_sent=int(item["bytes_sent"]),
                    body_bytes=int(item["body_bytes_sent"]),
                    protocol=item["protocol"],
                    range=item["range"],
                )
            )
        return out

    def clear(self) -> None:
        """Forget the requests logged so far (nginx appends to the truncated file)."""
        self.log.write_text("", encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(prefix: Path, port: int, root: Path | None, proxy: str | None, tls: Tls | None) -> str:
    # As root (CI), the workers would switch to nobody, who cannot read a test's private
    # folders: keep them root. Otherwise nginx runs as whoever started it.
    user = "user root root;" if os.geteuid() == 0 else ""
    listen = f"listen 127.0.0.1:{port} ssl http2;" if tls else f"listen 127.0.0.1:{port};"
    certs = f"ssl_certificate {tls.cert}; ssl_certificate_key {tls.key};" if tls else ""
    if proxy:
        # The Host header unchanged: an S3 request's signature covers it.
        body = (
            f"location / {{ proxy_pass {proxy}; proxy_set_header Host $http_host; "
            "proxy_buffering off; proxy_request_buffering off; }"
        )
    else:
        # /copy-<n>/<file> is <file> again: a name GDAL has never seen, so nothing is cached.
        body = f"root {root}; location ~ ^/copy-[0-9]+/(.+)$ {{ alias {root}/$1; }}"
    temp = " ".join(
        f"{name}_temp_path {prefix}/{name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 256; }}
http {{
    default_type application/octet-stream;
    log_format probe {LOG_FORMAT};
    access_log {prefix}/access.log probe;
    {temp}
    server {{
        {listen}
        {certs}
        {body}
    }}
}}
"""


@contextmanager
def serve(
    root: Path | None = None, *, proxy: str | None = None, tls: Tls | None = None
) -> Iterator[Nginx]:
    """nginx serving ``root`` (or proxying to ``proxy``, an http:// URL) on 127.0.0.1, over
    HTTPS with HTTP/2 when ``tls`` is given; stopped and its files removed on exit."""
    exe = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if Path(p).is_file()), None
    )
    if exe is None:
        raise RuntimeError("nginx is not installed: apt-get install nginx (Debian's)")
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-nginx.") as tmp:
        prefix = Path(tmp)
        port = _free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(_config(prefix, port, root, proxy, tls), encoding="utf-8")
        (prefix / "access.log").write_text("")
        proc = subprocess.Popen(
            [exe, "-p", str(prefix), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"nginx did not start: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("nginx did not listen within 10 s") from None
                    time.sleep(0.05)
            yield Nginx(port=port, scheme="https" if tls else "http", log=prefix / "access.log")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
