"""Papers: the effects the dashboard explains and the papers behind them (warehouse table `papers`)."""

import streamlit as st

from pages._shared import guarded, warehouse
from warehouse.explain import papers


def render():
    st.title("Papers behind the effects")
    st.caption(papers.SOURCE)
    for p in warehouse().papers().itertuples():
        st.subheader(p.title, anchor=p.key)
        st.markdown(papers.effect(p.effect, p.explains))
        st.markdown(papers.reported(p.figure, p.url, p.arxiv, p.github))


guarded(render)
