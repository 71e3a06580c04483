"""The Papers page: each paper's effect and what it reported."""

from __future__ import annotations

SOURCE = "From warehouse/papers.toml, loaded into the `papers` table so SQL can join it."


def effect(effect: str, explains: str) -> str:
    return f"**Effect:** {effect}. {explains}"


def reported(figure: str, url: str | None, arxiv: str | None, github: str | None) -> str:
    """What the paper reported, and links to it, its arXiv id and its code where known."""
    links = [f"[paper]({url})"] if url else []
    if arxiv:
        links.append(f"arXiv {arxiv}")
    if github:
        links.append(f"[code]({github})")
    return f"**Reported:** {figure}" + (f"  \n{' · '.join(links)}" if links else "")
