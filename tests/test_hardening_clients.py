"""Issue 25, the client side: the desk's origin and keys, its JSON frames, and the batch
CLI's files (resume keyed on options, private outputs that follow no planted link,
distinct outputs for same-stem inputs, keys kept out of argv and stderr).

Each test replays the input that exposed the weakness, on a real aiohttp server on
loopback or on real files; only the last one loads models (marked slow).
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from desk_helpers import free_port
from parlons.clients.desk.app import (
    CLOSE_BAD_KEY,
    CLOSE_BAD_MESSAGE,
    MAX_WRONG_KEYS,
    Desk,
    KeyAttempts,
    build_app,
    client_address,
    normalise_origin,
)
from parlons.clients.desk.bridge import GatewayConnection
from speech import AUDIO, espeak

DESK_KEY = "clé-du-poste-été-2025"  # non-ASCII, and long enough off loopback


async def _serve(desk: Desk) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(build_app(desk))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


def _nowhere() -> GatewayConnection:
    return GatewayConnection(f"127.0.0.1:{free_port()}")  # no gateway there


@pytest.fixture
async def desk_port() -> AsyncIterator[int]:
    runner, port = await _serve(Desk(_nowhere(), allowed_origins=["https://accueil.prefecture.example"]))
    yield port
    await runner.cleanup()


@pytest.fixture
async def keyed_desk_port() -> AsyncIterator[int]:
    runner, port = await _serve(Desk(_nowhere(), desk_key=DESK_KEY))
    yield port
    await runner.cleanup()


# ------------------------------------------------------------------ 1: the desk's own origins


async def test_a_rebound_host_name_is_refused_on_every_route(desk_port: int) -> None:
    """DNS rebinding: evil.example resolves to 127.0.0.1, so the browser sends Host and
    Origin both `evil.example:PORT`; comparing one with the other let it through."""
    rebound = f"evil.example:{desk_port}"
    url = f"http://127.0.0.1:{desk_port}"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"{url}/ws", headers={"Host": rebound, "Origin": f"http://{rebound}"})
        assert refused.value.status == 403
        async with session.get(f"{url}/", headers={"Host": rebound}) as response:
            assert response.status == 403
        # Another site's page, the desk's own Host: refused as before.
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"{url}/ws", headers={"Origin": "http://evil.example"})
        assert refused.value.status == 403
        # The desk's own names on its own port, and the configured reverse proxy, get in.
        for host in (f"127.0.0.1:{desk_port}", f"localhost:{desk_port}"):
            async with session.ws_connect(f"{url}/ws", headers={"Host": host, "Origin": f"http://{host}"}) as ws:
                await ws.send_str(json.dumps({"type": "new"}))
                assert (await ws.receive_json(timeout=10)) == {"type": "cleared"}
        async with session.ws_connect(f"{url}/ws", headers={"Host": "accueil.prefecture.example",
                                                            "Origin": "https://accueil.prefecture.example"}) as ws:
            await ws.send_str(json.dumps({"type": "new"}))
            assert (await ws.receive_json(timeout=10)) == {"type": "cleared"}


async def test_an_allowed_origin_must_be_an_origin() -> None:
    for bad in ("https://accueil.example/chemin", "*", "https://*.example", "ftp://accueil.example",
                "https://accueil.example:99999"):
        with pytest.raises(ValueError, match="allowed-origin"):
            Desk(_nowhere(), allowed_origins=[bad])
    assert normalise_origin("HTTPS://Accueil.Example:443/") == "https://accueil.example"
    assert normalise_origin("http://[::1]:8765") == "http://[::1]:8765"


# ------------------------------------------------------------------ 2: desk keys


async def test_a_non_ascii_key_is_compared_as_bytes(keyed_desk_port: int) -> None:
    """hmac.compare_digest on str raised TypeError for a non-ASCII key: a stack trace
    instead of « Clé du poste absente ou incorrecte »."""
    url, origin = f"http://127.0.0.1:{keyed_desk_port}", {"Origin": f"http://127.0.0.1:{keyed_desk_port}"}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{url}/ws", params={"cle": "été"}, headers=origin) as ws:
            reply = await ws.receive_json(timeout=10)
            assert reply["type"] == "error" and "Clé du poste" in reply["message"]
            await ws.receive(timeout=10)
            assert ws.close_code == CLOSE_BAD_KEY
        async with session.ws_connect(f"{url}/ws", params={"cle": DESK_KEY}, headers=origin) as ws:
            await ws.send_str(json.dumps({"type": "new"}))
            assert (await ws.receive_json(timeout=10)) == {"type": "cleared"}


async def test_wrong_keys_are_rate_limited_per_client_address(keyed_desk_port: int) -> None:
    """47 tries found a one-letter key: after MAX_WRONG_KEYS wrong ones an address gets
    429 (even with the right key, or the answers would still tell), others do not."""
    url, origin = f"http://127.0.0.1:{keyed_desk_port}", {"Origin": f"http://127.0.0.1:{keyed_desk_port}"}
    async with aiohttp.ClientSession() as session:
        for attempt in range(MAX_WRONG_KEYS):
            async with session.ws_connect(f"{url}/ws", params={"cle": f"k{attempt}"}, headers=origin) as ws:
                await ws.receive_json(timeout=10)
                await ws.receive(timeout=10)
                assert ws.close_code == CLOSE_BAD_KEY
        for key in ("k-again", DESK_KEY):
            with pytest.raises(aiohttp.WSServerHandshakeError) as limited:
                await session.ws_connect(f"{url}/ws", params={"cle": key}, headers=origin)
            assert limited.value.status == 429
            assert limited.value.headers is not None and int(limited.value.headers["Retry-After"]) >= 1
    # Another address (all of 127/8 is loopback on Linux) is not locked out.
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.ws_connect(f"{url}/ws", params={"cle": DESK_KEY}, headers=origin) as ws:
            await ws.send_str(json.dumps({"type": "new"}))
            assert (await ws.receive_json(timeout=10)) == {"type": "cleared"}


def test_key_attempts_expire_and_the_table_stays_bounded() -> None:
    now = [1000.0]
    attempts = KeyAttempts(limit=3, window_s=60.0, max_tracked=100, clock=lambda: now[0])
    for _ in range(3):
        assert attempts.retry_after("10.0.0.1") == 0.0
        attempts.failed("10.0.0.1")
    assert 0.0 < attempts.retry_after("10.0.0.1") <= 60.0
    now[0] += 61.0
    assert attempts.retry_after("10.0.0.1") == 0.0
    for i in range(10_000):  # a spray of addresses: memory does not follow
        attempts.failed(f"10.1.{i // 256}.{i % 256}")
    assert len(attempts) <= 100
    # One IPv6 machine holds a /64: its addresses count as one.
    assert client_address("2001:db8::1") == client_address("2001:db8::ffff:1") == "2001:db8::/64"
    assert client_address("::ffff:10.0.0.1") == "10.0.0.1" and client_address(None) == ""


def test_a_weak_desk_key_is_refused_off_loopback(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from parlons.cli import main

    monkeypatch.setenv("PARLONS_DESK_KEY", "k")
    code = main(["desk", "--host", "0.0.0.0", "--https-cert", "absent.pem", "--https-key", "absent.key",
                 "--server", "127.0.0.1:1"])
    assert code == 2
    assert "16" in capsys.readouterr().err


# ------------------------------------------------------------------ 3: JSON frames


async def test_a_deeply_nested_frame_gets_an_error_frame(desk_port: int) -> None:
    """60 KB of '[' made json.loads raise RecursionError, uncaught in the handler."""
    url, origin = f"http://127.0.0.1:{desk_port}", {"Origin": f"http://127.0.0.1:{desk_port}"}
    async with aiohttp.ClientSession() as session:
        for frame in ("[" * 60_000, '{"type": ' * 7_000, "[" * 4_000,  # within 64 KiB; 4000 within 4096
                      json.dumps({"type": "new", "x": [[[[[[[[[[1]]]]]]]]]]})):
            async with session.ws_connect(f"{url}/ws", headers=origin) as ws:
                await ws.send_str(frame)
                reply = await ws.receive_json(timeout=10)
                assert reply["type"] == "error" and reply["retry"] is False, reply
                await ws.receive(timeout=10)
                assert ws.close_code == CLOSE_BAD_MESSAGE
        async with session.get(f"{url}/sante") as response:
            assert (await response.json()) == {"status": "ok"}


# ------------------------------------------------------------------ 8: keys out of argv and stderr


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`parlons desk` up to the point where it would serve."""
    monkeypatch.setattr(web, "run_app", lambda app, **kwargs: app.close())
    yield


def test_the_desk_key_is_not_printed(no_server: None, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from parlons.cli import main

    monkeypatch.setenv("PARLONS_DESK_KEY", "desk-key-long-enough-0123")
    assert main(["desk", "--server", "127.0.0.1:1"]) == 0
    err = capsys.readouterr().err
    assert "desk-key-long-enough-0123" not in err and "http://127.0.0.1:8765/" in err
    assert "PARLONS_DESK_KEY" in err  # where the key is


def test_an_api_key_on_the_command_line_is_warned_about(no_server: None, capsys: pytest.CaptureFixture[str]) -> None:
    from parlons.cli import main

    assert main(["desk", "--server", "127.0.0.1:1", "--api-key", "prl_secret"]) == 0
    err = capsys.readouterr().err
    assert "--api-key" in err and "PARLONS_API_KEY" in err and "--api-key-file" in err
    assert "prl_secret" not in err


def test_an_api_key_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from parlons.clients.connection import add_connection_arguments, connection_from_args

    monkeypatch.setenv("PARLONS_API_KEY", "from-the-environment")
    key_file = tmp_path / "cle"
    key_file.write_text("prl_from_a_file\n")
    parser = argparse.ArgumentParser()
    add_connection_arguments(parser)
    args = parser.parse_args(["--server", "gw:50051", "--api-key-file", str(key_file)])
    assert connection_from_args(args).api_key == "prl_from_a_file"
    assert connection_from_args(parser.parse_args(["--server", "gw:50051"])).api_key == "from-the-environment"
    assert "--api-key" not in capsys.readouterr().err  # nothing to warn about


# ------------------------------------------------------------------ 5, 6: files with personal data


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_the_audio_mask_follows_no_planted_link(tmp_path: Path, umask_022: None) -> None:
    from parlons.audio_mask import mask_recording

    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch")
    target = tmp_path / "out.wav"
    (tmp_path / "out.wav.part").symlink_to(victim)  # the name the mask used to write through
    written = mask_recording(AUDIO / "sample.wav", target, [(1.0, 1.5)], "silence")
    assert victim.read_text() == "do not touch"
    assert written == target and not target.is_symlink() and target.read_bytes()[:4] == b"RIFF"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # a voice is personal data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav", "out.wav.part", "victim.txt"]


def test_an_existing_target_link_is_replaced_not_followed(tmp_path: Path) -> None:
    from parlons.audio_mask import mask_recording

    victim = tmp_path / "victim.wav"
    victim.write_bytes(b"not audio")
    target = tmp_path / "out.flac"
    target.symlink_to(victim)
    mask_recording(AUDIO / "sample.wav", target, [(1.0, 1.5)], "tone")
    assert victim.read_bytes() == b"not audio" and not target.is_symlink()


def test_the_mapping_is_private_and_follows_no_link(tmp_path: Path, umask_022: None) -> None:
    from parlons.clients.anonymize_cli import _write_mapping
    from parlons.v1 import anonymization_pb2

    entries = [anonymization_pb2.MappingEntry(replacement="[PERSONNE_1]", original="Fatima Benali")]
    mapping = tmp_path / "correspondance.json"
    _write_mapping(argparse.Namespace(mapping=str(mapping)), entries)
    assert json.loads(mapping.read_text(encoding="utf-8")) == {"[PERSONNE_1]": "Fatima Benali"}
    assert stat.S_IMODE(mapping.stat().st_mode) == 0o600
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch")
    planted = tmp_path / "planted.json"
    planted.symlink_to(victim)
    _write_mapping(argparse.Namespace(mapping=str(planted)), entries)
    assert victim.read_text() == "do not touch" and not planted.is_symlink()
    assert stat.S_IMODE(planted.stat().st_mode) == 0o600


def test_batch_outputs_are_private(tmp_path: Path, umask_022: None) -> None:
    from parlons.clients.batch import write_together

    target = tmp_path / "rdv.txt"
    write_together({target: "Mme Benali", tmp_path / "rdv.bin": b"\0\1"})
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert (tmp_path / "rdv.bin").read_bytes() == b"\0\1"


# ------------------------------------------------------------------ 7: same-stem inputs


def test_same_stem_inputs_get_distinct_outputs(tmp_path: Path) -> None:
    from parlons.clients.batch import Item, discover

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("rdv.wav", "rdv.flac", "autre.wav"):
        (folder / name).write_bytes(b"")
    items, problems = discover([str(folder)])
    assert problems == []
    stems = {item.source.name: item.out_stem.name for item in items}
    assert stems == {"rdv.wav": "rdv.wav", "rdv.flac": "rdv.flac", "autre.wav": "autre"}
    outputs = [p for item in items for p in item.outputs(["txt", "srt"], ["en"])]
    assert len(outputs) == len(set(outputs))
    again, _ = discover([str(folder)])
    assert again == items  # deterministic: a resumed run finds the same names

    # Same names from two folders into one --output-dir: refused, clearly, not lost.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "rdv.wav").write_bytes(b"")
    (tmp_path / "b" / "rdv.wav").write_bytes(b"")
    items, problems = discover([str(tmp_path / "a" / "rdv.wav"), str(tmp_path / "b" / "rdv.wav")],
                               output_dir=tmp_path / "out")
    assert [item.source for item in items] == [tmp_path / "a" / "rdv.wav"]
    assert len(problems) == 1 and problems[0][0] == str(tmp_path / "b" / "rdv.wav")
    assert "a/rdv.wav" in problems[0][1]
    assert isinstance(items[0], Item)


# ------------------------------------------------------------------ 4: resume keyed on options


def test_resume_is_keyed_on_the_options_that_shape_an_output(tmp_path: Path) -> None:
    from parlons.clients.batch import Item, forget_outputs, options_fingerprint, outputs_done, record_outputs

    item = Item(tmp_path / "rdv.wav", tmp_path / "rdv")
    outputs = item.outputs(["txt", "srt"], [])
    clear = options_fingerprint({"anonymization": None})
    masked = options_fingerprint({"anonymization": {"policy": "PLACEHOLDER"}})
    assert clear != masked and options_fingerprint({"anonymization": None}) == clear
    for path in outputs:
        path.write_text("Mme Benali")
    assert not outputs_done(item, [[p] for p in outputs], clear)  # outputs nobody recorded: done again
    record_outputs(item, outputs, clear)
    assert outputs_done(item, [[p] for p in outputs], clear)
    assert not outputs_done(item, [[p] for p in outputs], masked)  # --anonymize: done again
    forget_outputs(item, outputs[:1])
    assert not outputs_done(item, [[p] for p in outputs], clear)
    # The sidecar holds a digest, not the options (a hotword may be a name).
    sidecars = [p for p in tmp_path.iterdir() if p.name not in {"rdv.txt", "rdv.srt"}]
    assert len(sidecars) == 1 and "Benali" not in sidecars[0].read_text()


@pytest.mark.slow
def test_a_folder_run_again_with_anonymize_is_anonymised(tmp_path: Path) -> None:
    """The finding as it was found: the clear transcripts were kept, reported skipped."""
    audio = espeak("Bonjour. Je m'appelle Fatima Benali. Mon numéro est le 06 12 34 56 78.", "fr+f2",
                   tmp_path / "accueil.wav")
    out = tmp_path / "out"

    def transcribe(*extra: str) -> dict:  # type: ignore[type-arg]
        done = subprocess.run([sys.executable, "-m", "parlons.cli", "transcribe", str(audio), "--language", "fr",
                               "--model", "base", "--format", "txt", "--output-dir", str(out), "--quiet",
                               "--report", str(tmp_path / "report.json"), *extra],
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads((tmp_path / "report.json").read_text())  # type: ignore[no-any-return]

    assert transcribe()["counts"]["done"] == 1
    assert "Fatima" in (out / "accueil.txt").read_text()
    assert transcribe()["counts"]["skipped"] == 1  # same options: resumed
    assert transcribe("--anonymize")["counts"]["done"] == 1
    text = (out / "accueil.txt").read_text()
    assert "Fatima" not in text and "[PERSONNE_1]" in text
    assert transcribe("--anonymize")["counts"]["skipped"] == 1
