"""Hostile or broken inputs built on demand (issue 10): documents and audio whose
headers or structure say what a test needs, and what handling one costs (`measured`).
Shared by the tests and bench_hardening."""

from __future__ import annotations

import struct
import time
import tracemalloc
import zipfile
from io import BytesIO
from typing import TypeVar
from collections.abc import Callable

ODT_MIME = b"application/vnd.oasis.opendocument.text"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
T = TypeVar("T")


def measured(fn: Callable[[], T], *, memory: bool = True) -> tuple[T | BaseException, float, float]:
    """(result or exception, seconds, peak MiB allocated by Python while it ran). Tracing
    memory slows Python several times: timings that matter are taken without it."""
    if memory:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        outcome: T | BaseException = fn()
    except Exception as exc:
        outcome = exc
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if memory else float("nan")
    if memory:
        tracemalloc.stop()
    return outcome, seconds, peak


def zip_of(entries: dict[str, bytes]) -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED)
    return out.getvalue()


def crafted_odt(body: str) -> bytes:
    content = ('<?xml version="1.0" encoding="UTF-8"?><office:document-content '
               'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">'
               f'<office:body><office:text>{body}</office:text></office:body></office:document-content>')
    return zip_of({"mimetype": ODT_MIME, "content.xml": content.encode()})


def crafted_docx(body: str) -> bytes:
    document = f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W}"><w:body>{body}</w:body></w:document>'
    return zip_of({"[Content_Types].xml": b"<Types/>", "word/document.xml": document.encode()})


def nested_html(depth: int, repeats: int, text: str = "") -> bytes:
    one = "<div>" * depth + text + "</div>" * depth
    return f"<!doctype html><html><body>{one * repeats}</body></html>".encode()


def crafted_wav(data: bytes, *, format_tag: int = 1, bits: int = 16, rate: int = 16000, channels: int = 1) -> bytes:
    """A WAV whose header says whatever a test needs (a hostile or broken file)."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", format_tag, channels, rate, rate * block, block, bits)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", len(data)) + data)


def flate_bomb_pdf(inflated_mb: int) -> bytes:
    """A one-page PDF whose content stream is `inflated_mb` MiB of spaces, deflated
    (300 MiB in 300 KB): what a reader without decompression limits inflates whole."""
    import zlib

    content = zlib.compress(b" " * (inflated_mb << 20), 9)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
               b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
