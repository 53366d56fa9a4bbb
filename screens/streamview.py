"""An append-only, soft-wrapped plain-text view: what a streamed answer is shown in.

Appending re-wraps only the open last line, and a frame renders only the visible rows
from cached strips, so appending at token 20,000 costs what it costs at token 10.
"""

from __future__ import annotations

from rich.cells import cell_len, chop_cells
from rich.segment import Segment
from rich.style import Style
from textual.cache import LRUCache
from textual.events import Resize
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip


class StreamView(ScrollView, can_focus=True):
    """Plain text that only grows; wrapped at word boundaries to the widget's width."""

    DEFAULT_CSS = """
    StreamView {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        scrollbar-size-vertical: 0;
        border: tall $border-blurred;
        &:focus { border: tall $border; }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._parts: list[str] = []
        self._rows: list[str] = []
        """Visual rows; the last one is still open (more text may join it)."""
        self._wrap_width = 0
        self._strips: LRUCache[int, Strip] = LRUCache(128)
        self._style = Style()

    @property
    def text(self) -> str:
        """Everything appended so far."""
        return "".join(self._parts)

    def append(self, text: str) -> None:
        """Add ``text`` at the end; follow it if the view was at the bottom."""
        if not text:
            return
        following = self.is_vertical_scroll_end
        self._parts.append(text)
        if self._wrap_width:
            first = max(0, len(self._rows) - 1)
            self._wrap(text)
            for row in range(first, len(self._rows)):
                self._strips.discard(row)
            self._grow(Size(self._wrap_width, len(self._rows)))
            self.refresh_lines(first - self.scroll_offset.y, len(self._rows) - first)
        if following:
            self.scroll_end(animate=False, x_axis=False)  # after the refresh: the new height

    def _grow(self, size: Size) -> None:
        """Set the virtual size without a layout pass.

        ``virtual_size`` is a layout reactive: assigning it reflows the whole screen and
        repaints every widget on it, on every append. Growing changes nothing outside
        this widget, so only its scrollbars are updated (what Textual's own scroll
        update does).
        """
        self.set_reactive(StreamView.virtual_size, size)
        self._scroll_update(size)

    def _wrap(self, text: str) -> None:
        width = self._wrap_width
        rows = self._rows
        if not rows:
            rows.append("")
        for i, piece in enumerate(text.split("\n")):
            if i:
                rows.append("")
            tail = rows[-1] + piece
            # Only the first row's worth is measured: wrapping stays linear in the text.
            while cell_len(tail[: 2 * width + 1]) > width:
                head = chop_cells(tail[: 2 * width], width)[0]
                space = head.rfind(" ")
                cut = space + 1 if space > 0 else len(head)
                rows[-1] = tail[:cut]
                rows.append("")
                tail = tail[cut:]
            rows[-1] = tail

    def on_resize(self, event: Resize) -> None:
        width = max(1, self.scrollable_content_region.width)
        if width != self._wrap_width:
            self._wrap_width = width
            self._rows = []
            self._strips.clear()
            self._wrap(self.text)
            self.virtual_size = Size(width, len(self._rows))
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def render_lines(self, crop: Region) -> list[Strip]:
        self._style = self.rich_style  # once per frame, not once per row (it walks the DOM)
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.scrollable_content_region.width
        style = self._style
        if row >= len(self._rows):
            return Strip.blank(width, style)
        strip = self._strips.get(row)
        if strip is None:
            strip = Strip([Segment(self._rows[row], style)]).adjust_cell_length(width, style)
            self._strips[row] = strip
        return strip.apply_offsets(scroll_x, row)

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        return selection.extract("\n".join(self._rows)), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self._strips.clear()
        self.refresh()
