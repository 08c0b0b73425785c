"""Reading PDF, DOCX, TXT, Markdown and HTML files into passages that know where they came from.

Every loader is a generator of `Passage`s, so a 1,000-page PDF is read one page at a time (pypdf
parses pages lazily) and a large text file one line at a time: memory stays bounded by a page or a
section, never the whole file. Each passage carries its locator:

- PDF: the page (1-based); offsets are into that page's extracted text (`pdf_page_text`).
- DOCX, Markdown, HTML, TXT: the heading path ("Travel > Hotels") and the paragraph index (1-based,
  counted over the file's paragraphs); offsets are into the file's text, its paragraphs joined by
  a blank line (`document_text` rebuilds it, so a user can check any chunk).

Problems are not exceptions that stop a folder: a loader raises `DocumentError` for a file it cannot
read at all (corrupt, encrypted, binary) and appends to `warnings` for what it read only in part
(pages without a text layer, a non-UTF-8 encoding, an empty file).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

SUFFIXES = {".pdf": "pdf", ".docx": "docx", ".txt": "txt", ".md": "md", ".markdown": "md", ".html": "html",
            ".htm": "html"}
OCR_MIN_CHARS = 8  # a page with fewer extractable characters than this counts as having no text layer
SECTION_MAX_CHARS = 20_000  # a long run of paragraphs without headings is cut here (bounded memory)
PARAGRAPH_BREAK = "\n\n"  # joins paragraphs in a file's text: a blank line, so also a sentence boundary


class DocumentError(Exception):
    """A file that cannot be read at all; the message says why and what to do."""


@dataclass
class Passage:
    """A paragraph (or a PDF page) of a file, with its locator."""
    text: str
    page: int | None = None  # PDF page, 1-based
    heading: str = ""  # heading path, "Travel > Hotels"
    paragraph: int | None = None  # paragraph index in the file, 1-based (not PDF)
    offset: int = 0  # where `text` starts: in the page's text (PDF) or in the file's text (others)
    section: int = 0  # passages of one section (a page, or a heading's body) share this number


def file_kind(path: Path) -> str | None:
    return SUFFIXES.get(path.suffix.lower())


# -- PDF ------------------------------------------------------------------------------------------
def _open_pdf(path: Path):
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:  # many "encrypted" PDFs only restrict printing and open with the empty password
                opened = reader.decrypt("")
            except DependencyError as err:
                raise DocumentError("encrypted PDF (AES): pip install cryptography to open it, or "
                                    "save an unencrypted copy") from err
            if not opened:
                raise DocumentError("encrypted PDF that needs a password; save an unencrypted copy")
        pages = len(reader.pages)
    except (PdfReadError, FileNotDecryptedError, ValueError, KeyError, TypeError, OSError) as err:
        raise DocumentError(f"not a readable PDF ({type(err).__name__}: {err})") from err
    return reader, pages


def pdf_page_count(path: Path) -> int:
    return _open_pdf(path)[1]


def pdf_page_text(path: Path, page: int) -> str:
    """The extracted text of one page (1-based): PDF chunk offsets index into this."""
    reader, _ = _open_pdf(path)
    return _clean(reader.pages[page - 1].extract_text() or "")


def _clean(text: str) -> str:
    return text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n").strip()


def ocr_available() -> bool:
    import shutil

    try:
        import pytesseract  # noqa: F401
    except ImportError:
        return False
    return shutil.which("tesseract") is not None


def _ocr_page(page) -> str:
    import pytesseract

    texts = []
    for image in page.images:
        texts.append(pytesseract.image_to_string(image.image.convert("L")))
    return _clean("\n".join(texts))


def read_pdf(path: Path, warnings: list[str], ocr: str = "auto") -> Iterator[Passage]:
    """One passage per page. Pages with no text layer are OCR'd (ocr='auto' when Tesseract is there,
    'force' always tries), or reported in `warnings`; never silently dropped."""
    reader, pages = _open_pdf(path)
    if pages == 0:
        warnings.append("PDF has no pages")
    can_ocr = ocr != "off" and ocr_available()
    no_text, ocred, failed = [], [], []
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = _clean(page.extract_text() or "")
        except Exception as err:  # pypdf raises many kinds on a damaged page: keep the others
            failed.append(f"{number} ({type(err).__name__})")
            continue
        if len(text) < OCR_MIN_CHARS:
            if can_ocr and _has_images(page):
                text = _ocr_page(page)
                ocred.append(number)
            else:
                no_text.append(number)
                continue
        if text:
            yield Passage(text, page=number, offset=0, section=number)
    if ocred:
        warnings.append(f"no text layer on {len(ocred)} page(s) {_pages(ocred)}: read by OCR (Tesseract); "
                        "check them")
    if no_text:
        hint = ("OCR is off (--ocr auto)" if ocr == "off" else
                "install tesseract-ocr and pytesseract to OCR them" if not ocr_available() else "no image on them")
        warnings.append(f"no text on {len(no_text)} page(s) {_pages(no_text)} (scanned?): skipped; {hint}")
    if failed:
        warnings.append(f"could not extract page(s) {', '.join(failed)}: skipped")


def _has_images(page) -> bool:
    try:
        return len(page.images) > 0
    except Exception:
        return False


def _pages(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:8]))
    return f"({shown}{', ...' if len(numbers) > 8 else ''})"


# -- paragraph documents: DOCX, Markdown, HTML, TXT -----------------------------------------------
class _Paragraphs:
    """Numbers paragraphs, tracks offsets in the joined text, and starts sections at headings."""

    def __init__(self) -> None:
        self.headings: list[str] = []
        self.paragraph = 0
        self.offset = 0
        self.section = 0
        self.section_chars = 0

    def heading(self, level: int, text: str) -> Passage:
        del self.headings[level - 1:]
        self.headings += [""] * (level - 1 - len(self.headings)) + [text]
        self.section += 1
        self.section_chars = 0
        return self.body(text)  # the heading line is text too: it is what many questions name

    def body(self, text: str) -> Passage:
        if self.section_chars > SECTION_MAX_CHARS:
            self.section += 1
            self.section_chars = 0
        self.paragraph += 1
        passage = Passage(text, heading=" > ".join(h for h in self.headings if h), paragraph=self.paragraph,
                          offset=self.offset, section=self.section)
        self.offset += len(text) + len(PARAGRAPH_BREAK)
        self.section_chars += len(text)
        return passage


def read_docx(path: Path, warnings: list[str]) -> Iterator[Passage]:
    """Paragraphs and table rows in order; Word's "Heading N" styles (and "Title") give the heading path."""
    import zipfile

    import docx
    from docx.document import Document as _Document
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document: _Document = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as err:
        raise DocumentError(f"not a readable DOCX ({type(err).__name__}: {err})") from err
    except Exception as err:  # python-docx raises its own PackageNotFoundError and lxml errors
        raise DocumentError(f"not a readable DOCX ({type(err).__name__}: {err})") from err
    numbering = _Paragraphs()
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = item.text.strip()
            if not text:
                continue
            level = _heading_level(item.style.name if item.style is not None else "")
            yield numbering.heading(level, text) if level else numbering.body(text)
        elif isinstance(item, Table):
            for row in item.rows:
                cells = [c.text.strip() for c in row.cells]
                text = " | ".join(dict.fromkeys(c for c in cells if c))  # merged cells repeat
                if text:
                    yield numbering.body(text)
    if numbering.paragraph == 0:
        warnings.append("DOCX has no text")


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading (\d)", style)
    return int(match.group(1)) if match else 0


def _text_lines(path: Path, warnings: list[str]) -> Iterator[str]:
    """Lines of a text file, decoded incrementally. UTF-8 (with or without BOM) first; another
    encoding is detected on the first 64 KiB and reported; binary content is an error."""
    with open(path, "rb") as raw:
        head = raw.read(65536)
    if not head:
        return
    if b"\x00" in head or _control_share(head) > 0.1:
        raise DocumentError("binary content, not text (wrong file extension?)")
    encoding = "utf-8-sig"
    try:
        _decode_prefix(head, encoding)
    except UnicodeDecodeError:
        encoding = _guess_encoding(head)
        warnings.append(f"not UTF-8: read as {encoding} (check its accented letters)")
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    pending = ""
    with open(path, "rb") as raw:
        while block := raw.read(65536):
            pending += decoder.decode(block)
            *lines, pending = pending.split("\n")
            yield from lines
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _guess_encoding(head: bytes) -> str:
    """Windows-1252 when it decodes to printable text (the usual non-UTF-8 office file in Western
    Europe; detectors misjudge short samples), else charset_normalizer's guess."""
    try:
        text = head.decode("cp1252")
        if not any(0x80 <= ord(c) <= 0x9F for c in text):
            return "cp1252"
    except UnicodeDecodeError:
        pass
    import charset_normalizer

    best = charset_normalizer.from_bytes(head).best()
    return best.encoding if best is not None else "latin-1"


def _decode_prefix(head: bytes, encoding: str) -> None:
    """Decode `head`, allowing a multi-byte character cut at the end of the sample."""
    codecs.getincrementaldecoder(encoding)(errors="strict").decode(head, final=False)


def _control_share(data: bytes) -> float:
    controls = sum(1 for b in data if b < 32 and b not in (9, 10, 12, 13))
    return controls / len(data)


def _blocks(lines: Iterator[str]) -> Iterator[str]:
    """Paragraphs: runs of non-blank lines, joined by a space."""
    block: list[str] = []
    for line in lines:
        line = line.strip()
        if line:
            block.append(line)
        elif block:
            yield " ".join(block)
            block = []
    if block:
        yield " ".join(block)


def read_txt(path: Path, warnings: list[str]) -> Iterator[Passage]:
    numbering = _Paragraphs()
    for block in _blocks(_text_lines(path, warnings)):
        yield numbering.body(block)
    if numbering.paragraph == 0:
        warnings.append("no text")


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_ITEM = re.compile(r"^([-*+]|\d+\.)\s+")
_MD_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")


def read_markdown(path: Path, warnings: list[str]) -> Iterator[Passage]:
    """ATX headings (`#`, `##`...) give the heading path; blank lines separate paragraphs."""
    numbering = _Paragraphs()

    def lines_with_breaks() -> Iterator[str]:
        """Headings, table rows and list items are paragraphs of their own."""
        for line in _text_lines(path, warnings):
            stripped = line.strip()
            if _MD_TABLE_RULE.match(stripped):
                continue
            if _MD_HEADING.match(stripped) or _MD_ITEM.match(stripped):
                yield from ("", line, "")
            elif stripped.startswith("|"):
                cells = [c.strip() for c in stripped.strip("|").split("|")]
                yield from ("", " | ".join(c for c in cells if c), "")
            else:
                yield line

    for block in _blocks(lines_with_breaks()):
        match = _MD_HEADING.match(block)
        if match:
            yield numbering.heading(len(match.group(1)), match.group(2))
        else:
            yield numbering.body(_strip_markdown(block))
    if numbering.paragraph == 0:
        warnings.append("no text")


def _strip_markdown(text: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images: keep the label
    text = re.sub(r"(\*\*|__|`)", "", text)
    text = re.sub(r"(?<!\w)_(\S.*?\S)_(?!\w)", r"\1", text)  # _emphasis_
    return _MD_ITEM.sub("", text)


class _HTMLText(HTMLParser):
    BLOCKS = {"p", "li", "div", "td", "th", "tr", "br", "section", "article", "blockquote", "pre", "dd", "dt",
              "table", "ul", "ol", "body"}
    SKIP = {"script", "style", "head", "title", "nav", "noscript"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[tuple[int, str]] = []  # (heading level or 0, text)
        self.buffer: list[str] = []
        self.level = 0
        self.skip = 0

    def _flush(self) -> None:
        text = " ".join(" ".join(self.buffer).split())
        if text:
            self.out.append((self.level, text))
        self.buffer = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self.level = int(tag[1])
        elif tag in self.BLOCKS:
            self._flush()

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self.level = 0
        elif tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data):
        if not self.skip:
            self.buffer.append(data)


def read_html(path: Path, warnings: list[str]) -> Iterator[Passage]:
    """<h1>-<h6> give the heading path; block elements separate paragraphs. Fed incrementally."""
    parser = _HTMLText()
    numbering = _Paragraphs()
    for line in _text_lines(path, warnings):
        parser.feed(line + "\n")
        for level, text in parser.out:
            yield numbering.heading(level, text) if level else numbering.body(text)
        parser.out = []
    parser.close()
    parser._flush()
    for level, text in parser.out:
        yield numbering.heading(level, text) if level else numbering.body(text)
    if numbering.paragraph == 0:
        warnings.append("no text")


def read_passages(path: Path, warnings: list[str], ocr: str = "auto") -> Iterator[Passage]:
    """The passages of any supported file; DocumentError if it cannot be read at all."""
    kind = file_kind(path)
    if kind is None:
        raise DocumentError(f"unsupported file type {path.suffix or '(none)'}; supported: "
                            f"{', '.join(sorted(SUFFIXES))}")
    if path.stat().st_size == 0:
        warnings.append("empty file (0 bytes)")
        return
    if kind == "pdf":
        yield from read_pdf(path, warnings, ocr)
    elif kind == "docx":
        yield from read_docx(path, warnings)
    elif kind == "md":
        yield from read_markdown(path, warnings)
    elif kind == "html":
        yield from read_html(path, warnings)
    else:
        yield from read_txt(path, warnings)


def document_text(path: Path) -> str:
    """A paragraph document's text as its chunk offsets index it: the paragraphs joined by a blank line."""
    return PARAGRAPH_BREAK.join(p.text for p in read_passages(Path(path), []))
