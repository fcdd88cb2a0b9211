"""Tiny translation models that the tests build themselves (no weights can be downloaded).

Three kinds, matching the layouts the engine supports:

* `build_bilingual_model`: a random-weight CTranslate2 `TransformerSpec` with one
  SentencePiece model trained on a handful of French and English sentences, laid out like
  an OPUS-MT/Marian conversion (`source.spm`, `target.spm`, `model.bin`) plus a
  `parlons.json` naming the pair.
* `build_multilingual_model`: the same with language tokens in the vocabulary, laid out
  like NLLB-200 (`fra_Latn` ...) or M2M100 (`__fr__` ...), with `sentencepiece.bpe.model`.
* `build_hf_marian_model`: a tiny random Hugging Face `MarianMTModel` saved with its
  tokenizer files and converted by CTranslate2's real `TransformersConverter`.
* `build_hf_madlad_model`: a tiny random Hugging Face T5 shaped like MADLAD-400 (one
  SentencePiece model, `spiece.model`, whose pieces include `<2fr>`-style target tokens),
  converted by the real `TransformersConverter` with the catalog entry's options.
* `build_argos_package`: an `.argosmodel` zip around a bilingual model.

Weights are random, so translations are gibberish: tests assert structure, not meaning.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np
import sentencepiece as spm
from ctranslate2.specs import attention_spec, common_spec, transformer_spec

CORPUS = [
    "Bonjour, je voudrais renouveler mon titre de séjour.",
    "Votre rendez-vous est fixé au 12 mars 2024 à 14 h 30.",
    "Merci de présenter une pièce d'identité et un justificatif de domicile.",
    "Le dossier n° 2024/12345 est en cours d'instruction.",
    "Vous pouvez écrire à accueil@mairie.example.fr pour toute question.",
    "La caisse d'allocations familiales vous répondra sous quinze jours.",
    "Hello, I would like to renew my residence permit.",
    "Your appointment is on 12 March 2024 at 2:30 pm.",
    "Please bring an identity document and a proof of address.",
    "The file is being processed by the prefecture.",
    "You can write to the reception desk with any question.",
    "The family allowance office will answer within two weeks.",
    "Hola, quisiera renovar mi permiso de residencia.",
    "Привіт, я хотів би продовжити посвідку на проживання.",
    "مرحبا، أود تجديد تصريح الإقامة الخاص بي.",
    "0123456789 - / . , ; : ! ? ( ) « » ' \" % { } @ _ # & + = *",
]

NLLB_CODES = {"fr": "fra_Latn", "en": "eng_Latn", "es": "spa_Latn", "uk": "ukr_Cyrl", "ar": "arb_Arab"}
M2M_CODES = {"fr": "__fr__", "en": "__en__", "es": "__es__", "uk": "__uk__", "ar": "__ar__"}


def train_sentencepiece(
    vocab_size: int = 160,
    *,
    corpus: list[str] | None = None,
    unk_piece: str = "<unk>",
    bos_piece: str = "<s>",
    eos_piece: str = "</s>",
    unk_id: int = 0,
    bos_id: int = 1,
    eos_id: int = 2,
    pad_id: int = -1,
    model_type: str = "unigram",
    user_defined_symbols: tuple[str, ...] = (),
    byte_fallback: bool = False,
) -> bytes:
    """Train a small SentencePiece model in memory and return its serialized bytes."""
    writer = io.BytesIO()
    # Only when asked, so that the other test models keep their exact bytes.
    extra: dict[str, Any] = {}
    if user_defined_symbols:
        extra["user_defined_symbols"] = list(user_defined_symbols)
    if byte_fallback:
        extra["byte_fallback"] = True
    spm.SentencePieceTrainer.train(
        **extra,
        sentence_iterator=iter(corpus or CORPUS),
        model_writer=writer,
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        model_type=model_type,
        unk_id=unk_id,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
        unk_piece=unk_piece,
        bos_piece=bos_piece,
        eos_piece=eos_piece,
        minloglevel=2,
    )
    return writer.getvalue()


def sentencepiece_vocabulary(model_bytes: bytes) -> list[str]:
    sp = spm.SentencePieceProcessor(model_proto=model_bytes)
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def _fill_random(spec: transformer_spec.TransformerSpec, rng: np.random.Generator, d_model: int, ffn: int,
                 vocab_size: int, scale: float) -> None:
    """Give every weight of a Transformer spec a random value of the right shape."""

    def linear(layer: common_spec.LinearSpec, out_dim: int, in_dim: int) -> None:
        layer.weight = (rng.standard_normal((out_dim, in_dim)) * scale).astype(np.float32)
        layer.bias = np.zeros(out_dim, dtype=np.float32)

    def norm(layer: common_spec.LayerNormSpec) -> None:
        layer.gamma = np.ones(d_model, dtype=np.float32)
        layer.beta = np.zeros(d_model, dtype=np.float32)

    def attention(layer: attention_spec.MultiHeadAttentionSpec) -> None:
        norm(layer.layer_norm)
        if len(layer.linear) == 2:  # self-attention: fused QKV, output
            linear(layer.linear[0], 3 * d_model, d_model)
            linear(layer.linear[1], d_model, d_model)
        else:  # encoder-decoder attention: Q, fused KV, output
            linear(layer.linear[0], d_model, d_model)
            linear(layer.linear[1], 2 * d_model, d_model)
            linear(layer.linear[2], d_model, d_model)

    def ffn_layer(layer: transformer_spec.FeedForwardSpec) -> None:
        norm(layer.layer_norm)
        linear(layer.linear_0, ffn, d_model)
        linear(layer.linear_1, d_model, ffn)

    enc = spec.encoder
    dec = spec.decoder
    for emb in [*enc.embeddings, dec.embeddings]:
        emb.weight = (rng.standard_normal((vocab_size, d_model)) * scale).astype(np.float32)
    norm(enc.layer_norm)
    norm(dec.layer_norm)
    for layer in enc.layer:
        attention(layer.self_attention)
        ffn_layer(layer.ffn)
    for layer in dec.layer:
        attention(layer.self_attention)
        attention(layer.attention)
        ffn_layer(layer.ffn)
    linear(dec.projection, vocab_size, d_model)


def build_transformer(
    out_dir: Path,
    vocabulary: list[str],
    *,
    layers: int = 2,
    d_model: int = 32,
    heads: int = 2,
    ffn: int = 64,
    seed: int = 0,
    eos_bias: float = 0.0,
    decoder_start_token: str | None = "<s>",
    quantization: str | None = None,
) -> Path:
    """Save a random-weight CTranslate2 Transformer with one shared vocabulary.

    `eos_bias` raises the end-of-sentence logit so random outputs vary in length.
    """
    spec = transformer_spec.TransformerSpec.from_config(layers, heads)
    rng = np.random.default_rng(seed)
    _fill_random(spec, rng, d_model, ffn, len(vocabulary), scale=0.2)
    if eos_bias and "</s>" in vocabulary:
        spec.decoder.projection.bias[vocabulary.index("</s>")] = eos_bias
    spec.register_source_vocabulary(vocabulary)
    spec.register_target_vocabulary(vocabulary)
    spec.config.decoder_start_token = decoder_start_token
    spec.validate()
    spec.optimize(quantization=quantization)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec.save(str(out_dir))
    return out_dir


def build_bilingual_model(out_dir: Path, source: str = "fr", target: str = "en", *,
                          seed: int = 0, **kwargs: object) -> Path:
    """OPUS-MT-like layout: model.bin + source.spm/target.spm + parlons.json."""
    sp_bytes = train_sentencepiece()
    vocab = sentencepiece_vocabulary(sp_bytes)
    build_transformer(out_dir, vocab, seed=seed, **kwargs)  # type: ignore[arg-type]
    (out_dir / "source.spm").write_bytes(sp_bytes)
    (out_dir / "target.spm").write_bytes(sp_bytes)
    (out_dir / "parlons.json").write_text(json.dumps(
        {"layout": "marian", "source_languages": [source], "target_languages": [target]}))
    return out_dir


def build_multilingual_model(out_dir: Path, style: str = "nllb",
                             languages: tuple[str, ...] = ("fr", "en", "es", "uk"),
                             *, seed: int = 1, **kwargs: object) -> Path:
    """NLLB-200 (`fra_Latn`) or M2M100 (`__fr__`) layout with language tokens."""
    table = NLLB_CODES if style == "nllb" else M2M_CODES
    sp_bytes = train_sentencepiece()
    vocab = sentencepiece_vocabulary(sp_bytes)
    vocab += [table[lang] for lang in languages]
    build_transformer(out_dir, vocab, seed=seed, **kwargs)  # type: ignore[arg-type]
    (out_dir / "sentencepiece.bpe.model").write_bytes(sp_bytes)
    return out_dir


def build_argos_package(path: Path, source: str = "fr", target: str = "en", *, seed: int = 2) -> Path:
    """A `.argosmodel` zip: <name>/metadata.json, <name>/model/, <name>/sentencepiece.model."""
    work = path.parent / (path.stem + "-build")
    model_dir = build_transformer(work / "model", sentencepiece_vocabulary(train_sentencepiece()),
                                  seed=seed)
    name = f"translate-{source}_{target}"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}/metadata.json", json.dumps({
            "package_version": "1.0", "argos_version": "1.9.0", "from_code": source,
            "from_name": source, "to_code": target, "to_name": target,
        }))
        zf.writestr(f"{name}/sentencepiece.model", train_sentencepiece())
        for f in sorted(model_dir.iterdir()):
            zf.write(f, f"{name}/model/{f.name}")
    return path


def _without_broken_torchaudio() -> None:
    """Keep transformers from importing torchaudio when its native library cannot load.

    transformers imports torchaudio whenever the package is installed; a torchaudio built
    for another torch version then breaks `import transformers.models.marian`, although
    Marian needs no audio at all.
    """
    try:
        import torchaudio  # noqa: F401
    except Exception:
        import transformers.utils as tu
        import transformers.utils.import_utils as iu

        iu.is_torchaudio_available = lambda: False  # type: ignore[assignment]
        tu.is_torchaudio_available = lambda: False  # type: ignore[assignment]
        sys.modules.pop("torchaudio", None)


def build_hf_marian_model(out_dir: Path, source: str = "fr", target: str = "en", *,
                          d_model: int = 16, layers: int = 1, seed: int = 3) -> Path:
    """A tiny random `MarianMTModel` + MarianTokenizer files, converted by CTranslate2.

    The Hugging Face checkpoint goes to `<out_dir>-hf`; the CTranslate2 model (with the
    SentencePiece files copied next to it, as `parlons models pull` does) to `out_dir`.
    """
    import torch
    _without_broken_torchaudio()
    from transformers import MarianConfig, MarianMTModel

    hf_dir = out_dir.parent / (out_dir.name + "-hf")
    hf_dir.mkdir(parents=True, exist_ok=True)
    sp_bytes = train_sentencepiece(unk_id=1, eos_id=0, bos_id=-1, pad_id=-1)
    (hf_dir / "source.spm").write_bytes(sp_bytes)
    (hf_dir / "target.spm").write_bytes(sp_bytes)
    pieces = [p for p in sentencepiece_vocabulary(sp_bytes) if p not in ("</s>", "<unk>")]
    vocab = {"</s>": 0, "<unk>": 1}
    for p in pieces:
        vocab.setdefault(p, len(vocab))
    vocab["<pad>"] = len(vocab)
    (hf_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (hf_dir / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "MarianTokenizer", "source_lang": source, "target_lang": target,
        "model_max_length": 512, "separate_vocabs": False,
    }))
    torch.manual_seed(seed)
    config = MarianConfig(
        vocab_size=len(vocab), decoder_vocab_size=len(vocab), d_model=d_model,
        encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=2 * d_model, decoder_ffn_dim=2 * d_model,
        max_position_embeddings=256, pad_token_id=vocab["<pad>"], eos_token_id=0,
        decoder_start_token_id=vocab["<pad>"], forced_eos_token_id=0,
    )
    MarianMTModel(config).save_pretrained(hf_dir)
    converter = ctranslate2.converters.TransformersConverter(
        str(hf_dir), copy_files=["source.spm", "target.spm"])
    converter.convert(str(out_dir), force=True)
    (out_dir / "parlons.json").write_text(json.dumps(
        {"layout": "marian", "source_languages": [source], "target_languages": [target]}))
    return out_dir


# Target tokens as MADLAD-400's vocabulary writes them, with some of its pieces that name no
# language (a task tag, a bare script, a variant) and two codes for one tag (`ff`, `fuv`).
MADLAD_TOKENS = ("<2fr>", "<2en>", "<2uk>", "<2ar>", "<2es>", "<2zh_Hant>", "<2prs>", "<2ff>", "<2fuv>",
                 "<2translate>", "<2Latn>", "<2en_xx_simple>")


def madlad_hf_checkpoint(hf_dir: Path, *, tokens: tuple[str, ...] = MADLAD_TOKENS, d_model: int = 32,
                         layers: int = 1, seed: int = 6) -> Path:
    """A tiny random `T5ForConditionalGeneration` laid out like google/madlad400-3b-mt.

    Same shape of config as the real one (gated-GELU T5 v1.1, untied embeddings, decoder
    start id 0 = `<unk>`, pad 1, eos 2), `spiece.model` with the `<2xx>` tokens as
    user-defined pieces (so `"<2fr> text"` encodes as `▁ <2fr> ...`) and byte fallback, and
    the tokenizer config a T5 repo carries; weights in safetensors.
    """
    import torch
    _without_broken_torchaudio()
    from transformers import T5Config, T5ForConditionalGeneration

    hf_dir.mkdir(parents=True, exist_ok=True)
    sp_bytes = train_sentencepiece(420, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
                                   user_defined_symbols=tokens, byte_fallback=True)
    (hf_dir / "spiece.model").write_bytes(sp_bytes)
    (hf_dir / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "T5Tokenizer", "eos_token": "</s>", "unk_token": "<unk>",
        "pad_token": "<s>", "extra_ids": 0, "model_max_length": 1_000_000_000,
    }))
    torch.manual_seed(seed)
    settings: dict[str, Any] = {
        "vocab_size": len(sentencepiece_vocabulary(sp_bytes)), "d_model": d_model, "d_kv": d_model // 2,
        "d_ff": 2 * d_model, "num_layers": layers, "num_decoder_layers": layers, "num_heads": 2,
        "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False,
        "decoder_start_token_id": 0, "pad_token_id": 1, "eos_token_id": 2,
    }
    T5ForConditionalGeneration(T5Config(**settings)).save_pretrained(hf_dir)
    return hf_dir


def build_hf_madlad_model(out_dir: Path, *, quantization: str | None = "int8", **kwargs: object) -> Path:
    """`madlad_hf_checkpoint` in `<out_dir>-hf`, converted into `out_dir` as the catalog's
    `madlad400-3b-mt` pull does (`TransformersConverter`, `copy_files = ["spiece.model"]`)."""
    hf_dir = madlad_hf_checkpoint(out_dir.parent / (out_dir.name + "-hf"), **kwargs)  # type: ignore[arg-type]
    converter = ctranslate2.converters.TransformersConverter(
        str(hf_dir), copy_files=["spiece.model"], low_cpu_mem_usage=True)
    converter.convert(str(out_dir), quantization=quantization, force=True)
    return out_dir


# --- pytest fixtures (import them into a test module to use them) ---------------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def translation_model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tiny model, built once per session: fr>en and en>uk bilingual, NLLB, M2M100."""
    root = tmp_path_factory.mktemp("translation-models")
    return {
        "fr-en": build_bilingual_model(root / "opus-mt-fr-en", "fr", "en", seed=0),
        "en-uk": build_bilingual_model(root / "opus-mt-en-uk", "en", "uk", seed=5),
        "nllb": build_multilingual_model(root / "nllb-tiny", "nllb", ("fr", "en", "es", "uk")),
        "m2m": build_multilingual_model(root / "m2m-tiny", "m2m100", ("fr", "en", "ar"), seed=4),
    }


# --- documents the tests translate -----------------------------------------------------

def make_docx() -> bytes:
    """A letter: heading, styled runs, a table, header and footer, a tab and a line break."""
    import docx
    from docx.enum.text import WD_BREAK

    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = "Préfecture de police - Accueil des étrangers"
    document.sections[0].footer.paragraphs[0].text = "Page de bas de document, merci."
    document.add_heading("Convocation au guichet", level=1)
    p = document.add_paragraph("Madame, ")
    bold = p.add_run("votre rendez-vous est confirmé")
    bold.bold = True
    p.add_run(" pour le dossier n° 2024/12345.")
    q = document.add_paragraph("Présentez-vous avec votre passeport.", style="List Bullet")
    q.add_run().add_break(WD_BREAK.LINE)
    q.add_run("Apportez aussi une photo.")
    tab = document.add_paragraph("Nom :")
    tab.add_run().add_tab()
    italic = tab.add_run("Jean Dupont")
    italic.italic = True
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Pièce demandée"
    table.cell(0, 1).text = "Nombre"
    table.cell(1, 0).text = "Photo d'identité"
    table.cell(1, 1).text = "2"
    document.add_paragraph("Écrivez à accueil@prefecture.example.fr pour toute question.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_odt() -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.style import Style, TextProperties
    from odf.text import H, P, S, Span

    doc = OpenDocumentText()
    bold = Style(name="Gras", family="text")
    bold.addElement(TextProperties(fontweight="bold"))
    doc.automaticstyles.addElement(bold)
    doc.text.addElement(H(outlinelevel=1, text="Attestation de dépôt"))
    p = P(text="Nous avons reçu ")
    span = Span(stylename=bold, text="votre demande complète")
    p.addElement(span)
    p.addText(" le 12/03/2024.")
    doc.text.addElement(p)
    q = P(text="Deux espaces")
    q.addElement(S(c=2))
    q.addText("ici, puis la suite de la phrase.")
    doc.text.addElement(q)
    out = io.BytesIO()
    doc.write(out)
    return out.getvalue()


def make_pdf(pages: list[list[str]], *, user_password: str | None = None,
             owner_password: str | None = None) -> bytes:
    """A text PDF (Helvetica, WinAnsi), one list of lines per page, optionally encrypted."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"), NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
    }))
    for lines in pages:
        page = writer.add_blank_page(595, 842)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        ops = ["BT", "/F1 11 Tf", "14 TL", "56 780 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = DecodedStreamObject()
        stream.set_data("\n".join(ops).encode("cp1252"))
        page[NameObject("/Contents")] = writer._add_object(stream)
    if user_password is not None or owner_password is not None:
        writer.encrypt(user_password=user_password or "", owner_password=owner_password, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


SRT_SAMPLE = """1
00:00:01,000 --> 00:00:03,500
Bonjour, je voudrais
renouveler mon titre de séjour.

2
00:00:04,000 --> 00:00:06,250
<i>Votre dossier est complet.</i>

3
00:00:07,000 --> 00:00:09,000
Rendez-vous le 12/03/2024.
"""

VTT_SAMPLE = """WEBVTT - guichet

STYLE
::cue { color: yellow }

NOTE réunion du matin

intro
00:00:01.000 --> 00:00:03.500 align:start line:0
<v Agent>Bonjour, que puis-je faire
pour vous ?

00:00:04.000 --> 00:00:06.000
Je viens pour mon titre de séjour.
"""

HTML_SAMPLE = """<!DOCTYPE html>
<html lang="fr">
<head><meta charset="utf-8"><title>Démarches en ligne</title>
<style>p { color: red; }</style><script>var message = "ne pas traduire";</script></head>
<body>
<h1 class="titre">Bienvenue à la mairie</h1>
<p>Pour renouveler votre <b>carte d'identité</b>, prenez <a href="/rdv">rendez-vous en ligne</a>.</p>
<p translate="no">Mairie de Saint-Denis</p>
<p>Code : <code>ABC-123</code></p>
<img src="logo.png" alt="Logo de la mairie">
<ul><li>Première étape</li><li>Deuxième étape</li></ul>
</body>
</html>
"""
