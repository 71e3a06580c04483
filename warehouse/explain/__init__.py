"""Findings into sentences, one module per question: the one place where the dashboard's claims are worded.

Every function takes findings computed by warehouse/analysis.py (or query rows) and
returns whole sentences (Markdown), or None when its condition does not hold; each
sentence quotes the numbers it rests on. Pages only place what these return. A paper
is cited through `cite(key)`, which the page supplies (a link to its Papers row).
No Streamlit here.

Modules: words (how numbers are written), measured, scaling, effects, throughput, operators, answer,
capacity, pictures, serving, workers, states. Import the module of the question; this package re-exports nothing.
"""
