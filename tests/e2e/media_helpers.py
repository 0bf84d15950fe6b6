"""Helpers of the media tests: images made with Pillow, uploads, raw HTTP, and the files a daemon stored."""
from __future__ import annotations

import hashlib
import io
import socket
from pathlib import Path

from PIL import Image
from twisted.internet import threads

UPLOAD = "/_matrix/media/v3/upload"
MEDIA_V1 = "/_matrix/client/v1/media"
CSP = ("sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
       "style-src 'unsafe-inline'; media-src 'self'; object-src 'self';")


def image_bytes(size=(64, 48), fmt="PNG", color=(200, 30, 30), **save_options) -> bytes:
    out = io.BytesIO()
    mode = "RGBA" if fmt == "PNG" else "RGB"
    Image.new(mode, size, color).save(out, fmt, **save_options)
    return out.getvalue()


def animated_gif(size=(200, 100), frames=4) -> bytes:
    images = [Image.new("RGB", size, (60 * i, 100, 255 - 60 * i)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def media_path(content_uri: str) -> tuple[str, str]:
    """C{(server_name, media_id)} of an C{mxc://} URI."""
    assert content_uri.startswith("mxc://"), content_uri
    server_name, media_id = content_uri[len("mxc://"):].split("/", 1)
    return server_name, media_id


async def upload(client, token: str, data: bytes, content_type: str | None = "application/octet-stream",
                 filename: str | None = None) -> str:
    """Upload C{data}; assert 200 and return the C{mxc://} URI."""
    headers = {"Content-Type": content_type} if content_type else {}
    query = {"filename": filename} if filename is not None else None
    response = await client.request("POST", UPLOAD, data, token=token, headers=headers, query=query)
    assert response.code == 200, response
    return response.json["content_uri"]


async def download(client, token: str | None, content_uri: str, *, file_name: str | None = None,
                   headers: dict | None = None, query: dict | None = None, validate: bool = True):
    server_name, media_id = media_path(content_uri)
    path = f"{MEDIA_V1}/download/{server_name}/{media_id}" + (f"/{file_name}" if file_name else "")
    return await client.request("GET", path, token=token, headers=headers, query=query, validate=validate)


async def thumbnail(client, token: str, content_uri: str, **query):
    server_name, media_id = media_path(content_uri)
    return await client.request("GET", f"{MEDIA_V1}/thumbnail/{server_name}/{media_id}", token=token,
                                query={k: str(v).lower() if isinstance(v, bool) else str(v)
                                       for k, v in query.items()})


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def stored_files(server) -> list[Path]:
    """Every file of the daemon's local media store (content and thumbnails, not temporary files)."""
    root = server.directory / "var" / "media" / "content"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def temporary_files(server) -> list[Path]:
    root = server.directory / "var" / "media" / "tmp"
    return sorted(p for p in root.iterdir() if p.is_file()) if root.exists() else []


def stored_copies(server, data: bytes) -> list[Path]:
    """The files of the store holding exactly C{data}."""
    digest = hashlib.sha256(data).hexdigest()
    return [p for p in stored_files(server) if hashlib.sha256(p.read_bytes()).hexdigest() == digest]


def raw_request(port: int, head: str, parts: list[bytes], *, hang_up: bool = False):
    """
    Send a request through a plain socket (in a thread): the head, then each
    part; stop sending if the server closes. With C{hang_up}, close right
    after sending (a client that goes away mid-body); else read the answer
    until the server closes.

    @return: a Deferred firing with the raw answer (C{b""} with C{hang_up}).
    """

    def exchange() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            s.sendall(head.encode("latin-1"))
            for part in parts:
                try:
                    s.sendall(part)
                except (BrokenPipeError, ConnectionResetError):
                    break
            if hang_up:
                return b""
            answer = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                answer += chunk
            return answer

    return threads.deferToThread(exchange)


def chunked(data: bytes, size: int = 65536) -> list[bytes]:
    """C{data} in HTTP/1.1 chunked encoding, with the final empty chunk."""
    parts = [f"{len(data[i:i + size]):x}\r\n".encode() + data[i:i + size] + b"\r\n"
             for i in range(0, len(data), size)]
    return parts + [b"0\r\n\r\n"]
