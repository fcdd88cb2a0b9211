"""The on-disk layouts of the translation models deployments use, and their token rules.

Each family wraps SentencePiece pieces differently before CTranslate2 sees them:

| layout   | files                                   | source tokens                      | target prefix |
|----------|-----------------------------------------|------------------------------------|---------------|
| marian   | model.bin, source.spm, target.spm       | [>>fra<<] pieces </s>              | none          |
| nllb     | model.bin, sentencepiece.bpe.model      | fra_Latn pieces </s>               | [eng_Latn]    |
| m2m100   | model.bin, sentencepiece.bpe.model      | __fr__ pieces </s>                 | [__en__]      |
| madlad   | model.bin, spiece.model                 | ▁ <2fr> pieces </s>                | none          |
| argos    | metadata.json, model/, sentencepiece.model | pieces                          | metadata's    |

MADLAD-400 (T5) reads any source language and writes the language of its `<2xx>` token:
the token is written before the sentence and goes through SentencePiece with it, as the
model's own tokenizer does for `"<2fr> text"` (`▁`, `<2fr>`, then the sentence's pieces).

A directory may carry `parlons.json` (written by the model manager) that names the layout
and the languages explicitly: `{"layout": "marian", "source_languages": ["fr"],
"target_languages": ["en"]}`; otherwise the layout is recognised from the files, and an
OPUS-MT pair from a directory name such as `opus-mt-fr-en`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sentencepiece as spm

from parlons.errors import InvalidArgument, ModelCorrupt, ModelNotFound
from parlons.services.translation import languages, safezip

METADATA_FILE = "parlons.json"
LAYOUTS = ("marian", "nllb", "m2m100", "madlad", "argos")
# argos-translate's own codes that are not ISO 639-1.
ARGOS_CODES = {"zt": "zh-Hant", "pb": "pt-BR", "nb": "nb"}
# MADLAD-400's SentencePiece model: `spiece.model` as its Hugging Face repo names it (copied
# by the conversion), `sentencepiece.model` in CTranslate2 conversions published as such.
MADLAD_SP_FILES = ("spiece.model", "sentencepiece.model")
_OPUS_NAME = re.compile(r"opus-mt-(?:tc-(?:big|base)-)?([a-z]{2,3}(?:_[a-zA-Z]+)?)-([a-z]{2,3}(?:_[a-zA-Z]+)?)$")


@dataclass
class ModelLayout:
    """How to turn text into this model's source tokens and its output back into text."""

    kind: str
    name: str
    #: Directory holding the CTranslate2 model (model.bin).
    model_dir: Path
    #: BCP-47 -> the model's language token ("" when the model needs none).
    source_languages: dict[str, str]
    target_languages: dict[str, str]
    source_sp: spm.SentencePieceProcessor = field(repr=False)
    target_sp: spm.SentencePieceProcessor = field(repr=False)
    #: Marian multi-target models put `>>fra<<` at the start of the *source*, MADLAD `<2fr>`.
    target_token_in_source: bool = False
    #: That token is text for the SentencePiece model (MADLAD: `<2fr>` is one of its pieces
    #: and the model was trained on `"<2fr> text"` encoded whole), not a bare vocabulary entry.
    target_token_encoded: bool = False
    append_eos: bool = True
    #: argos packages may name a fixed prefix for every target.
    fixed_target_prefix: list[str] = field(default_factory=list)

    @property
    def multilingual(self) -> bool:
        return len(self.source_languages) > 1 or len(self.target_languages) > 1

    def source_tokens(self, text: str, source: str, target: str) -> list[str]:
        pieces: list[str] = self.source_sp.encode(text, out_type=str)
        prefix: list[str] = []
        if self.target_token_in_source and self.target_languages.get(target):
            prefix = self._target_token(self.target_languages[target])
        elif self.kind in ("nllb", "m2m100"):
            prefix.append(self.source_languages[source])
        return prefix + pieces + (["</s>"] if self.append_eos else [])

    def _target_token(self, token: str) -> list[str]:
        if self.target_token_encoded:
            pieces: list[str] = self.source_sp.encode(token, out_type=str)
            if token in pieces:  # `<2fr>` -> [`▁`, `<2fr>`]: the model's own tokenization
                return pieces
        return [token]

    def target_prefix(self, target: str) -> list[str] | None:
        if self.kind in ("nllb", "m2m100"):
            return [self.target_languages[target]]
        return list(self.fixed_target_prefix) or None


def _vocabulary(model_dir: Path) -> list[str]:
    """The target vocabulary of a CTranslate2 model directory (json or txt)."""
    for stem in ("shared_vocabulary", "target_vocabulary"):
        json_path = model_dir / f"{stem}.json"
        if json_path.exists():
            try:
                return list(json.loads(json_path.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                raise ModelCorrupt(f"{json_path}: unreadable vocabulary ({exc})") from exc
        txt_path = model_dir / f"{stem}.txt"
        if txt_path.exists():
            return txt_path.read_text(encoding="utf-8").splitlines()
    raise ModelCorrupt(f"{model_dir}: no vocabulary file (shared_vocabulary.json or target_vocabulary.json)")


def _load_sp(path: Path) -> spm.SentencePieceProcessor:
    if not path.exists():
        raise ModelCorrupt(f"SentencePiece model {path} is missing")
    try:
        return spm.SentencePieceProcessor(model_file=str(path))
    except (OSError, RuntimeError) as exc:
        raise ModelCorrupt(f"{path}: not a SentencePiece model ({exc})") from exc


def _tags(codes: list[str] | None, what: str) -> list[str]:
    if not codes:
        raise ModelCorrupt(f"{what}: no languages declared")
    return [languages.normalize(ARGOS_CODES.get(code, code)) for code in codes]


def _require_model_bin(model_dir: Path) -> None:
    if not (model_dir / "model.bin").exists():
        raise ModelCorrupt(f"{model_dir}: no model.bin; not a CTranslate2 model directory")


def load_layout(
    path: str | Path,
    *,
    source_languages: list[str] | None = None,
    target_languages: list[str] | None = None,
    name: str | None = None,
    cache_dir: Path | None = None,
) -> ModelLayout:
    """Recognise the model at `path` (directory or `.argosmodel`) and load its tokenizers.

    Explicit languages win over what the files say, for layouts that do not record them.
    """
    path = Path(path)
    if not path.exists():
        raise ModelNotFound(f"translation model {str(path)!r} does not exist")
    if path.is_file():
        if path.suffix != ".argosmodel":
            raise InvalidArgument(f"{path}: expected a model directory or an .argosmodel package")
        path = extract_argos_package(path, cache_dir or default_cache_dir())
    meta: dict[str, Any] = {}
    if (path / METADATA_FILE).exists():
        try:
            meta = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelCorrupt(f"{path / METADATA_FILE}: unreadable ({exc})") from exc
    kind = str(meta.get("layout") or _guess_kind(path))
    if kind not in LAYOUTS:
        raise ModelCorrupt(f"{path}: unknown layout {kind!r}; known: {', '.join(LAYOUTS)}")
    src: list[str] | None = source_languages or meta.get("source_languages")
    tgt: list[str] | None = target_languages or meta.get("target_languages")
    model_name = name or str(meta.get("name") or path.name)
    if kind == "argos":
        return _argos(path, model_name, src, tgt)
    _require_model_bin(path)
    vocab = _vocabulary(path)
    if kind == "madlad":
        return _madlad(path, model_name, vocab, src, tgt)
    if kind in ("nllb", "m2m100"):
        sp_path = next((path / n for n in ("sentencepiece.bpe.model", "spm.model", "sentencepiece.model")
                        if (path / n).exists()), path / "sentencepiece.bpe.model")
        sp = _load_sp(sp_path)
        codes = languages.nllb_codes(vocab) if kind == "nllb" else languages.m2m_codes(vocab)
        if not codes:
            raise ModelCorrupt(f"{path}: a {kind} model without language tokens in its vocabulary")
        src_map = {t: codes[t] for t in (_tags(src, str(path)) if src else codes) if t in codes}
        tgt_map = {t: codes[t] for t in (_tags(tgt, str(path)) if tgt else codes) if t in codes}
        return ModelLayout(kind, model_name, path, src_map, tgt_map, sp, sp)
    # marian
    src_sp = _load_sp(path / "source.spm")
    tgt_sp = _load_sp(path / "target.spm") if (path / "target.spm").exists() else src_sp
    target_tokens = languages.marian_target_codes(vocab)
    if not src or (not tgt and not target_tokens):
        guessed = _OPUS_NAME.search(path.name)
        if guessed:
            src = src or guessed.group(1).split("_")
            tgt = tgt or ([] if target_tokens else guessed.group(2).split("_"))
    if not src:
        raise ModelCorrupt(
            f"{path}: cannot tell which languages this Marian model translates; add {METADATA_FILE} "
            '({"layout": "marian", "source_languages": ["fr"], "target_languages": ["en"]})')
    src_map = {t: "" for t in _tags(src, str(path))}
    if target_tokens:
        wanted = set(_tags(tgt, str(path))) if tgt else set(target_tokens)
        tgt_map = {t: tok for t, tok in target_tokens.items() if t in wanted}
    else:
        tgt_map = {t: "" for t in _tags(tgt, str(path))}
    return ModelLayout("marian", model_name, path, src_map, tgt_map, src_sp, tgt_sp,
                       target_token_in_source=bool(target_tokens))


def _guess_kind(path: Path) -> str:
    if (path / "metadata.json").exists() and (path / "model").is_dir():
        return "argos"
    if (path / "source.spm").exists():
        return "marian"
    if (path / "model.bin").exists():
        vocab = _vocabulary(path)
        if any((path / n).exists() for n in MADLAD_SP_FILES) and languages.madlad_codes(vocab):
            return "madlad"
        if languages.nllb_codes(vocab):
            return "nllb"
        if languages.m2m_codes(vocab):
            return "m2m100"
    raise ModelCorrupt(
        f"{path}: not a recognised translation model (expected an OPUS-MT/Marian, NLLB-200, "
        "M2M100 or MADLAD-400 CTranslate2 directory, or an argos package)")


def _madlad(path: Path, name: str, vocab: list[str], src: list[str] | None,
            tgt: list[str] | None) -> ModelLayout:
    """MADLAD-400: targets are the `<2xx>` tokens; the source is never named to the model,
    so by default it reads every language it writes (a declared list narrows that)."""
    sp_path = next((path / n for n in MADLAD_SP_FILES if (path / n).exists()), path / MADLAD_SP_FILES[0])
    sp = _load_sp(sp_path)
    codes = languages.madlad_codes(vocab)
    if not codes:
        raise ModelCorrupt(f"{path}: a MADLAD model without <2xx> language tokens in its vocabulary")
    src_map = {t: "" for t in (_tags(src, str(path)) if src else codes)}
    tgt_map = {t: codes[t] for t in (_tags(tgt, str(path)) if tgt else codes) if t in codes}
    return ModelLayout("madlad", name, path, src_map, tgt_map, sp, sp,
                       target_token_in_source=True, target_token_encoded=True)


def _argos(path: Path, name: str, src: list[str] | None, tgt: list[str] | None) -> ModelLayout:
    try:
        meta = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelCorrupt(f"{path}/metadata.json: unreadable ({exc})") from exc
    model_dir = path / "model"
    _require_model_bin(model_dir)
    sp_path = path / "sentencepiece.model"
    sp = _load_sp(sp_path)
    src_tags = _tags(src or [meta.get("from_code", "")], str(path))
    tgt_tags = _tags(tgt or [meta.get("to_code", "")], str(path))
    prefix = str(meta.get("target_prefix") or "").split()
    return ModelLayout("argos", name if name != path.name else f"argos-{path.name}", model_dir,
                       {t: "" for t in src_tags}, {t: "" for t in tgt_tags}, sp, sp,
                       append_eos=False, fixed_target_prefix=prefix)


def default_cache_dir() -> Path:
    base = os.environ.get("PARLONS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "parlons")
    return Path(base) / "argos"


ARGOS_LIMITS = safezip.ZipLimits(max_entries=10_000, max_total_bytes=8 * 1024**3,
                                 max_entry_bytes=4 * 1024**3, max_ratio=50.0)


def extract_argos_package(package: Path, cache_dir: Path) -> Path:
    """Unpack an `.argosmodel` (a zip with one top folder) once, keyed by its content hash."""
    digest = hashlib.sha256()
    with package.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    dest = cache_dir / f"{package.stem}-{digest.hexdigest()[:12]}"
    if not dest.exists():
        tmp = dest.with_name(dest.name + ".part")
        with safezip.open_checked(package, ARGOS_LIMITS, f"argos package {package.name}") as zf:
            safezip.extract_all(zf, tmp, ARGOS_LIMITS, f"argos package {package.name}")
        tmp.rename(dest)
    roots = [p for p in dest.iterdir() if p.is_dir() and (p / "metadata.json").exists()]
    if (dest / "metadata.json").exists():
        return dest
    if len(roots) != 1:
        raise ModelCorrupt(f"{package}: expected one folder with metadata.json inside the package")
    return roots[0]
