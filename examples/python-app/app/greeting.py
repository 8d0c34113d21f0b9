"""The app's own module: what the server says (kept in the image because it is in files:)."""

import html


def greet(name: str) -> str:
    return f"hello, {html.escape(name)}, from pare\n"
