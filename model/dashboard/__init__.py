"""The interactive dashboard: a Mesa SolaraViz page (`mittelbau dashboard`).

`controls` and `paired` hold no web code and import without the `dashboard` extra; `app` is
the Solara page itself and needs it.
"""
