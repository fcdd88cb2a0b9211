"""Documents end to end on a tiny random model: layout, styles and timings kept; bad files refused."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile

import docx
import pytest
import srt
import webvtt
from odf import opendocument, teletype
from odf.text import H, P, Span
from pypdf import PdfReader

from parlons.errors import InvalidArgument
from parlons.services.translation import documents
from parlons.services.translation.documents import DocFormat, DocumentLimits
from parlons.services.translation.engine import TranslationEngine
from parlons.services.translation.glossary import Glossary, GlossaryEntry
from parlons.services.translation.model import RuntimeOptions, TranslationModel
from parlons.services.translation.safezip import ZipLimits
from translation_models import (  # noqa: F401
    HTML_SAMPLE,
    SRT_SAMPLE,
    VTT_SAMPLE,
    make_docx,
    make_odt,
    make_pdf,
    translation_model_dirs,
)

RUNTIME = RuntimeOptions(device="cpu", batch_wait_ms=2, max_decoding_length=30)


@pytest.fixture
async def engine(translation_model_dirs):  # noqa: F811
    eng = TranslationEngine([TranslationModel.load(translation_model_dirs["fr-en"], RUNTIME)],
                            document_limits=DocumentLimits(max_pdf_pages=50))
    yield eng
    for m in eng.models:
        await m.aclose()


def _texts(paragraphs) -> list[str]:  # type: ignore[no-untyped-def]
    return [p.text for p in paragraphs]


def _style_names(document: docx.document.Document) -> list[str | None]:
    names = []
    for p in document.paragraphs:
        assert p.style is not None  # python-docx falls back to the default style
        names.append(p.style.name)
    return names


async def test_docx_layout_and_styles_are_kept(engine) -> None:
    original = make_docx()
    result = await engine.translate_document(original, "en", "fr", file_name="convocation.docx",
                                             glossary=Glossary.build([GlossaryEntry("passeport", "passport")]))
    assert result.format == DocFormat.DOCX and result.file_name == "convocation.en.docx"
    assert result.mime_type == documents.MIME_TYPES[DocFormat.DOCX]
    src, out = docx.Document(io.BytesIO(original)), docx.Document(io.BytesIO(result.content))
    assert len(out.paragraphs) == len(src.paragraphs)
    assert _style_names(out) == _style_names(src)
    for a, b in zip(src.paragraphs, out.paragraphs):
        assert len(a.runs) == len(b.runs)
        assert [r.bold for r in a.runs] == [r.bold for r in b.runs]
        assert [r.italic for r in a.runs] == [r.italic for r in b.runs]
        assert [bool(r.text.strip()) for r in a.runs] == [bool(r.text.strip()) for r in b.runs]
        if a.text.strip():
            assert b.text != a.text  # translated
    letter = out.paragraphs[1]
    assert "n° 2024/12345" in letter.text and letter.runs[1].bold
    bullet = out.paragraphs[2]
    assert "\n" in bullet.text and "passport" in bullet.text  # line break and glossary kept
    assert "\t" in out.paragraphs[3].text
    assert "accueil@prefecture.example.fr" in out.paragraphs[4].text
    assert len(out.tables) == 1 and len(out.tables[0].rows) == 2 and len(out.tables[0].columns) == 2
    assert out.tables[0].cell(1, 1).text == "2"
    assert out.sections[0].header.paragraphs[0].text not in ("", src.sections[0].header.paragraphs[0].text)
    assert out.sections[0].footer.paragraphs[0].text not in ("", src.sections[0].footer.paragraphs[0].text)
    zin, zout = zipfile.ZipFile(io.BytesIO(original)), zipfile.ZipFile(io.BytesIO(result.content))
    assert zin.namelist() == zout.namelist()
    for name in ("word/styles.xml", "word/numbering.xml", "[Content_Types].xml"):
        if name in zin.namelist():
            assert zin.read(name) == zout.read(name)  # untouched parts stay byte for byte
    assert result.segments >= 10 and result.characters > 100 and result.source_language == "fr"


async def test_odt_spans_and_headings_are_kept(engine) -> None:
    original = make_odt()
    result = await engine.translate_document(original, "en", "fr", file_name="attestation.odt")
    assert result.format == DocFormat.ODT
    zout = zipfile.ZipFile(io.BytesIO(result.content))
    assert zout.namelist()[0] == "mimetype" and zout.getinfo("mimetype").compress_type == zipfile.ZIP_STORED
    src = opendocument.load(io.BytesIO(original))
    out = opendocument.load(io.BytesIO(result.content))
    assert len(out.getElementsByType(H)) == len(src.getElementsByType(H)) == 1
    assert len(out.getElementsByType(P)) == len(src.getElementsByType(P)) == 2
    spans = out.getElementsByType(Span)
    assert len(spans) == 1 and spans[0].getAttribute("stylename") == "Gras"
    assert teletype.extractText(spans[0]).strip() and teletype.extractText(spans[0]) != "votre demande complète"
    first = teletype.extractText(out.getElementsByType(P)[0])
    assert "12/03/2024" in first
    assert teletype.extractText(out.getElementsByType(H)[0]) != "Attestation de dépôt"


async def test_html_markup_is_kept_and_marked_text_is_not_translated(engine) -> None:
    result = await engine.translate_document(HTML_SAMPLE.encode(), "en", "fr", file_name="page.html")
    html = result.content.decode("utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="en">' in html
    assert 'var message = "ne pas traduire";' in html and "p { color: red; }" in html
    assert '<p translate="no">Mairie de Saint-Denis</p>' in html
    assert "<code>ABC-123</code>" in html
    assert html.count("<b>") == 1 and html.count('<a href="/rdv">') == 1 and html.count("<li>") == 2
    assert "Bienvenue à la mairie" not in html and "Logo de la mairie" not in html
    assert 'alt="' in html and '<h1 class="titre">' in html


async def test_html_fragment_stays_a_fragment(engine) -> None:
    result = await engine.translate_document(b"<p>Bonjour <em>madame</em>.</p>", "en", "fr",
                                             fmt=DocFormat.HTML)
    html = result.content.decode()
    assert html.startswith("<p>") and html.endswith("</p>") and "<em>" in html and "<html" not in html


async def test_srt_numbering_timings_and_tags_are_kept(engine) -> None:
    result = await engine.translate_document(SRT_SAMPLE.encode(), "en", "fr", file_name="guichet.srt")
    src = list(srt.parse(SRT_SAMPLE))
    out = list(srt.parse(result.content.decode()))
    assert [(s.index, s.start, s.end) for s in out] == [(s.index, s.start, s.end) for s in src]
    assert out[0].content.count("\n") == 1  # two lines stay two lines
    assert out[1].content.startswith("<i>") and out[1].content.endswith("</i>")
    assert "12/03/2024" in out[2].content
    assert all(a.content != b.content for a, b in zip(src, out))


async def test_vtt_header_settings_styles_and_voices_are_kept(engine) -> None:
    result = await engine.translate_document(VTT_SAMPLE.encode(), "en", "fr", file_name="guichet.vtt")
    text = result.content.decode()
    assert text.startswith("WEBVTT - guichet")
    out = webvtt.WebVTT.from_string(text)
    src = webvtt.WebVTT.from_string(VTT_SAMPLE)
    assert [(c.start, c.end, c.identifier) for c in out.captions] == [(c.start, c.end, c.identifier) for c in src.captions]
    assert str(out.captions[0].settings) == str(src.captions[0].settings)
    assert out.captions[0].raw_text.startswith("<v Agent>")
    assert "::cue { color: yellow }" in text
    assert out.captions[1].text != src.captions[1].text


async def test_pdf_becomes_docx_or_text_and_says_so(engine) -> None:
    pdf = make_pdf([["Bonjour madame, votre dossier est complet et il est", "maintenant en cours d'examen.", "",
                     "Rendez-vous le 12/03/2024."], ["Deuxième page du courrier."]])
    as_docx = await engine.translate_document(pdf, "en", "fr", file_name="courrier.pdf")
    assert as_docx.format == DocFormat.DOCX and as_docx.file_name == "courrier.en.docx"
    assert any("PDF" in note for note in as_docx.notes)
    document = docx.Document(io.BytesIO(as_docx.content))
    body = "\n".join(_texts(document.paragraphs))
    assert "12/03/2024" in body
    breaks = document.element.body.xml.count('w:type="page"')
    assert breaks == 1
    as_text = await engine.translate_document(pdf, "en", "fr", pdf_output=DocFormat.TXT)
    assert as_text.format == DocFormat.TXT and as_text.content.decode().count("\f") == 1


async def test_pdf_with_owner_password_only_is_opened(engine) -> None:
    pdf = make_pdf([["Bonjour madame, votre dossier est complet."]], owner_password="restrict")
    result = await engine.translate_document(pdf, "en", "fr", fmt=DocFormat.PDF)
    assert result.segments == 1


async def test_plain_text_keeps_lines(engine) -> None:
    text = "Bonjour.\n\nVotre dossier n° 2024/12345 est prêt.\n"
    result = await engine.translate_document(text.encode(), "en", "fr", file_name="note.txt")
    out = result.content.decode()
    assert out.count("\n") == 3 and "n° 2024/12345" in out


# --- bad documents -----------------------------------------------------------------------

def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


async def _refused(engine, data: bytes, match: str, **kwargs) -> None:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    with pytest.raises(InvalidArgument, match=match):
        await engine.translate_document(data, "en", "fr", **kwargs)
    assert time.perf_counter() - started < 10


async def test_bad_documents_get_precise_errors(engine) -> None:
    good = make_docx()
    await _refused(engine, b"", "empty", fmt=DocFormat.DOCX)
    await _refused(engine, good[: len(good) // 2], "corrupt", fmt=DocFormat.DOCX)
    await _refused(engine, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 4000, "password-protected",
                   file_name="secret.docx")
    await _refused(engine, _zip({"word/document.xml": b"<w:document><unclosed>"}), "malformed", fmt=DocFormat.DOCX)
    await _refused(engine, _zip({"hello.txt": b"hi"}), "not a DOCX", fmt=DocFormat.DOCX)
    await _refused(engine, make_pdf([["Secret"]], user_password="1234"), "password-protected", file_name="a.pdf")
    await _refused(engine, b"%PDF-1.7\n garbage garbage", "corrupt", fmt=DocFormat.PDF)
    await _refused(engine, "Bonjour é".encode("latin-1"), "not valid utf-8", file_name="note.txt")
    await _refused(engine, "1\n00:00:01,000 --> 00:00:02,000\nCafé\n".encode("latin-1"), "not valid utf-8",
                   fmt=DocFormat.SRT)
    await _refused(engine, b"\x89PNG\r\n\x1a\n....", "PNG")


async def test_declared_charset_is_honoured(engine) -> None:
    result = await engine.translate_document("Bonjour, ça va ? Très bien.".encode("cp1252"), "en", "fr",
                                             mime_type="text/plain; charset=windows-1252")
    assert result.content.decode("utf-8") and "UTF-8" in " ".join(result.notes)


async def test_zip_bomb_disguised_as_docx_is_refused_before_inflating(engine) -> None:
    bomb = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<" + b" " * (60 * 1024 * 1024) + b">"})
    assert len(bomb) < 200_000
    await _refused(engine, bomb, "zip bomb", file_name="innocent.docx")
    many = _zip({f"word/header{i}.xml": b"<x/>" for i in range(50)})
    limits = DocumentLimits(zip=ZipLimits(max_entries=20))
    with pytest.raises(InvalidArgument, match="entries"):
        documents.extract(many, DocFormat.DOCX, limits)
    total = _zip({"word/document.xml": b"a" * 300_000, "word/footer1.xml": b"b" * 300_000})
    with pytest.raises(InvalidArgument, match="inflates to"):
        documents.extract(total, DocFormat.DOCX, DocumentLimits(zip=ZipLimits(max_total_bytes=500_000)))


async def test_pdf_over_the_page_limit_is_refused_before_extraction(engine) -> None:
    pdf = await asyncio.to_thread(make_pdf, [[f"Page {i}"] for i in range(500)])
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 500
    await _refused(engine, pdf, "500 pages; at most 50", file_name="rapport.pdf")


async def test_documents_over_the_character_limit_are_refused(engine) -> None:
    limits = DocumentLimits(max_chars=1000)
    with pytest.raises(InvalidArgument, match="characters"):
        documents.extract(("Une phrase. " * 200).encode(), DocFormat.TXT, limits)
    with pytest.raises(InvalidArgument, match="bytes"):
        documents.extract(b"x" * 2000, DocFormat.TXT, DocumentLimits(max_bytes=1000))


def test_formats_are_detected_from_name_mime_or_content() -> None:
    assert documents.detect_format(b"", file_name="a.DOCX") == DocFormat.DOCX
    assert documents.detect_format(b"", mime_type="text/vtt") == DocFormat.VTT
    assert documents.detect_format(b"%PDF-1.4 ...") == DocFormat.PDF
    assert documents.detect_format(make_odt()) == DocFormat.ODT
    assert documents.detect_format(make_docx()) == DocFormat.DOCX
    assert documents.detect_format(SRT_SAMPLE.encode()) == DocFormat.SRT
    assert documents.detect_format(VTT_SAMPLE.encode()) == DocFormat.VTT
    assert documents.detect_format(HTML_SAMPLE.encode()) == DocFormat.HTML
    assert documents.detect_format(b"Bonjour") == DocFormat.TXT
