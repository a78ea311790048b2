"""Contact sheets: labelled cells of equal size in a grid, with a title line."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (250, 250, 250)
INK = (20, 20, 20)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 ships a scalable default
    except TypeError:  # pragma: no cover - older Pillow
        return ImageFont.load_default()


def _wrap(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and font.getlength(trial) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return [*lines, line] if line else lines


def fit(image: Image.Image, cell: int) -> Image.Image:
    """The image scaled so its long side is ``cell`` pixels (aspect kept)."""
    im = image.convert("RGB")
    k = cell / max(im.size)
    size = (max(1, round(im.width * k)), max(1, round(im.height * k)))
    return im.resize(size, Image.Resampling.LANCZOS)


def contact_sheet(
    cells: Sequence[tuple[str, Image.Image | None]],
    columns: int,
    title: str = "",
    cell: int = 256,
    row_labels: list[str] | None = None,
) -> Image.Image:
    """A grid of ``cells`` (label, image or None for an empty slot), ``columns`` wide.

    Labels are drawn under each cell in a font scaled to the cell; ``title`` on a line above;
    ``row_labels`` (optional) in a column on the left.
    """
    columns = max(1, columns)
    rows = max(1, -(-len(cells) // columns))
    fitted = [None if image is None else fit(image, cell) for _, image in cells]
    # rows as tall as their tallest image, so labels sit right under the pictures
    heights = [
        max([im.height for im in fitted[r * columns : (r + 1) * columns] if im] or [cell // 4])
        for r in range(rows)
    ]
    font = _font(max(11, cell // 16))
    title_font = _font(max(12, cell // 13))
    label_h = max(16, cell // 12)
    pad = max(4, cell // 40)
    left = 0
    if row_labels:
        left = max(int(font.getlength(t)) for t in row_labels) + 2 * pad
    width = left + columns * (cell + pad) + pad
    lines = _wrap(title, title_font, width - 2 * pad) if title else []
    line_h = max(14, cell // 11)
    top = len(lines) * line_h + 2 * pad if lines else pad
    height = top + sum(h + label_h + pad for h in heights) + pad
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for i, line in enumerate(lines):
        draw.text((pad, pad + i * line_h), line, fill=INK, font=title_font)
    row_top = [top + sum(h + label_h + pad for h in heights[:r]) for r in range(rows)]
    for k, ((label, _), image) in enumerate(zip(cells, fitted)):
        r, c = divmod(k, columns)
        x, y = left + pad + c * (cell + pad), row_top[r]
        if image is not None:
            sheet.paste(image, (x, y))
        text = label
        while text and font.getlength(text) > cell:
            text = text[:-2] + "…" if len(text) > 2 else ""
        draw.text((x, y + heights[r] + 2), text, fill=INK, font=font)
    for r, text in enumerate((row_labels or [])[:rows]):
        draw.text((pad, row_top[r] + heights[r] // 2), text, fill=INK, font=font)
    return sheet


def with_source(
    pairs: list[tuple[str, Image.Image | None]],
    columns: int,
    row_labels: list[str],
    photo: Image.Image | None,
) -> tuple[list[tuple[str, Image.Image | None]], int, list[str]]:
    """The source photo first: in a single row, as its first cell (one column more); in a grid,
    alone on a row of its own above it."""
    if photo is None:
        return pairs, columns, row_labels
    if not row_labels:
        return [("source", photo), *pairs], columns + 1, row_labels
    blank: list[tuple[str, Image.Image | None]] = [("", None)] * (columns - 1)
    return [("source", photo), *blank, *pairs], columns, ["", *row_labels]
