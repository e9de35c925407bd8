"""Building blocks of Paidan's PDF documents: the Chinese font, bilingual labels, tables,
photos scaled to fit, and the page footer."""

from __future__ import annotations

import io
import logging
from datetime import datetime
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, Image, Paragraph, Table, TableStyle

log = logging.getLogger(__name__)

# Built into reportlab: Chinese text without shipping a font file (and it extracts as text).
FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))
LOCAL = ZoneInfo("Asia/Shanghai")
# Photos: scaled into this box; big camera images are shrunk first so the PDF stays small.
PHOTO_WIDTH, PHOTO_HEIGHT = 82 * mm, 62 * mm
PHOTO_PIXELS = 1400
LINE = colors.HexColor("#dee0e3")
SHADE = colors.HexColor("#f5f6f7")

TITLE = ParagraphStyle("title", fontName=FONT, fontSize=18, leading=24, spaceAfter=4)
HEADING = ParagraphStyle(
    "heading", fontName=FONT, fontSize=12, leading=16, spaceBefore=10, spaceAfter=4
)
BODY = ParagraphStyle("body", fontName=FONT, fontSize=9.5, leading=13)
SMALL = ParagraphStyle("small", fontName=FONT, fontSize=8, leading=10, textColor=colors.grey)


def both(message: LazyString, separator: str = " / ") -> str:
    """A lazily translated ``message`` in Chinese and in English (the report is read by both,
    whatever the language of whoever caused it to be made)."""
    with force_locale("zh"):
        zh = str(message)
    with force_locale("en"):
        en = str(message)
    return zh if zh == en else f"{zh}{separator}{en}"


def heading(message: LazyString) -> Paragraph:
    return Paragraph(escape(both(message)), HEADING)


def text(value, style: ParagraphStyle = BODY) -> Paragraph:
    """Stored data as a paragraph: escaped, line breaks kept, "—" when empty."""
    if value is None or value == "":
        value = "—"
    return Paragraph(escape(str(value)).replace("\n", "<br/>"), style)


def label(message: LazyString) -> Paragraph:
    """A table label: Chinese, with the English below it in small type."""
    zh, _, en = both(message, "\n").partition("\n")
    markup = escape(zh) + (f'<br/><font size="7" color="grey">{escape(en)}</font>' if en else "")
    return Paragraph(markup, BODY)


def local_time(value: datetime | None) -> str:
    return value.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M") if value else "—"


def hours_minutes(seconds: float | None) -> str:
    """A span as h:mm (hours may pass 24), readable in both languages."""
    if seconds is None:
        return "—"
    minutes = max(int(seconds) // 60, 0)
    return f"{minutes // 60}:{minutes % 60:02d}"


def fields_table(rows: list[tuple[LazyString, object]]) -> Table:
    """Two columns: bilingual labels and their values."""
    table = Table(
        [
            [label(name), value if isinstance(value, Flowable) else text(value)]
            for name, value in rows
        ],
        colWidths=[38 * mm, None],
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.4, LINE),
                ("BACKGROUND", (0, 0), (0, -1), SHADE),
            ]
        )
    )
    return table


def grid(header: list[LazyString], rows: list[list[object]], widths: list[float | None]) -> Table:
    """A table with a bilingual header row and data rows."""
    table = Table(
        [[label(name) for name in header]]
        + [[cell if isinstance(cell, Flowable) else text(cell) for cell in row] for row in rows],
        colWidths=widths,
        repeatRows=1,
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (-1, 0), SHADE),
                ("LINEBELOW", (0, 0), (-1, -1), 0.4, LINE),
            ]
        )
    )
    return table


def photo(path, name: str) -> Flowable:
    """The image at ``path`` as a JPEG scaled into the photo box, or a line saying it cannot
    be shown (a format Pillow does not read, such as HEIC without a plugin, or one whose
    pixel count Pillow refuses as a decompression bomb: a few MB of PNG can claim gigabytes)."""
    try:
        with PILImage.open(path) as source:
            image = ImageOps.exif_transpose(source).convert("RGB")
    except (UnidentifiedImageError, OSError, PILImage.DecompressionBombError) as error:
        log.info("photo %s not shown in the service report: %s", name, error)
        reason = both(_l("The photo cannot be shown"))
        return text(f"{reason}: {name}", SMALL)
    image.thumbnail((PHOTO_PIXELS, PHOTO_PIXELS))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    buffer.seek(0)
    scale = min(PHOTO_WIDTH / image.width, PHOTO_HEIGHT / image.height)
    return Image(buffer, width=image.width * scale, height=image.height * scale)


def photo_grid(photos: list[tuple[Flowable, str]]) -> Table:
    """Photos two per row, each with its file name below."""
    cells = [[item, text(name, SMALL)] for item, name in photos]
    rows = [cells[i : i + 2] for i in range(0, len(cells), 2)]
    if len(rows[-1]) == 1:
        rows[-1].append("")
    table = Table(rows, colWidths=[PHOTO_WIDTH + 4 * mm] * 2)
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table


def footer(number: str, generated: datetime):
    """A page callback: the work-order number, when the report was made, the page number."""
    made = both(_l("Generated"))
    page = both(_l("Page"))

    def draw(canvas, document) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7.5)
        canvas.setFillColor(colors.grey)
        canvas.drawString(
            document.leftMargin, 10 * mm, f"{number} · {made} {local_time(generated)}"
        )
        canvas.drawRightString(
            document.pagesize[0] - document.rightMargin, 10 * mm, f"{page} {document.page}"
        )
        canvas.restoreState()

    return draw
