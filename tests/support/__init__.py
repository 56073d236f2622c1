"""Shared test support: a scripted loopback HTTP server (``http_server``) and other helpers."""
