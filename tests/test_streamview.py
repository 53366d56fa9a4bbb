"""The stream view: append-only text, wrapped at word boundaries, shown inert."""

from __future__ import annotations

from textual.app import App, ComposeResult

from workbench.screens.streamview import StreamView


class One(App[None]):
    CSS = "StreamView { width: 24; height: 6; border: none; }"

    def compose(self) -> ComposeResult:
        yield StreamView()


def shown(view: StreamView) -> list[str]:
    return [view.render_line(y).text.rstrip() for y in range(view.scrollable_content_region.height)]


async def test_wraps_at_spaces_and_newlines_as_text_arrives() -> None:
    app = One()
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.query_one(StreamView)
        width = view.scrollable_content_region.width
        for piece in ["The quick ", "brown fox jum", "ps over the lazy ", "dog.\nNext line"]:
            view.append(piece)
            await pilot.pause()
        assert view.text == "The quick brown fox jumps over the lazy dog.\nNext line"
        rows = shown(view)
        assert all(len(row) <= width for row in rows)
        # Words are never cut where a space allows a break, and nothing is lost.
        assert " ".join(r for r in rows if r).split() == view.text.split()
        assert rows[-1] == "" or "Next line" in rows


async def test_a_word_longer_than_the_width_is_cut_and_wide_characters_count_twice() -> None:
    app = One()
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.query_one(StreamView)
        width = view.scrollable_content_region.width
        view.append("x" * (width * 2 + 3))
        await pilot.pause()
        assert shown(view)[:3] == ["x" * width, "x" * width, "xxx"]
        view.append("\n" + "漢" * width)
        await pilot.pause()
        from rich.cells import cell_len

        assert all(cell_len(row) <= width for row in shown(view))


async def test_markup_and_escapes_stay_text_and_the_view_follows_the_end() -> None:
    app = One()
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.query_one(StreamView)
        view.append("[bold]not bold[/]")
        for n in range(30):
            view.append(f"\nline {n}")
        await pilot.pause()
        rows = shown(view)
        assert rows[-1] == "line 29"  # followed the end
        view.scroll_home(animate=False)
        await pilot.pause()
        assert shown(view)[0] == "[bold]not bold[/]"
        view.append("\nline 30")  # scrolled up: the view stays where the reader is
        await pilot.pause()
        assert shown(view)[0] == "[bold]not bold[/]"


async def test_a_resize_rewraps_everything() -> None:
    app = One()
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.query_one(StreamView)
        view.append("alpha beta gamma delta epsilon zeta eta theta")
        await pilot.pause()
        narrow = shown(view)
        view.styles.width = 40
        await pilot.pause()
        await pilot.pause()
        wide = shown(view)
        assert len(narrow[0]) <= 24 < len(wide[0]) <= 40
        assert " ".join(wide).split() == view.text.split()
