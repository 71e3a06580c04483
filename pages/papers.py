"""Papers: the effects the dashboard explains and the papers behind them (warehouse table `papers`)."""

import streamlit as st

from pages._shared import guarded, warehouse


def render():
    st.title("Papers behind the effects")
    st.caption("From warehouse/papers.toml, loaded into the `papers` table so SQL can join it.")
    for p in warehouse().papers().itertuples():
        st.subheader(p.title, anchor=p.key)
        links = [f"[paper]({p.url})"] if p.url else []
        if p.arxiv:
            links.append(f"arXiv {p.arxiv}")
        if p.github:
            links.append(f"[code]({p.github})")
        st.markdown(f"**Effect:** {p.effect}. {p.explains}")
        st.markdown(f"**Reported:** {p.figure}" + (f"  \n{' · '.join(links)}" if links else ""))


guarded(render)
