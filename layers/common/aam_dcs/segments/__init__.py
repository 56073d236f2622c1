"""Segments: extraction from DCS answers (``stuff`` cookie destinations, ``d_cts``) and the lookup use case."""
