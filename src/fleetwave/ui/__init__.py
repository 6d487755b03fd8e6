"""The web dashboard (``/ui``): server-rendered pages over the same services as the API."""
