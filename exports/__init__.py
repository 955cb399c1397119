"""Exports: what the catalog knows of an asset, in the archive world's own formats (WebVTT, IIIF, PBCore).

`record` gathers one asset's rows from the catalog, `formats` names the formats and renders
each, `run` writes them to a folder or S3 (atomically per file, incrementally), and `http`
serves them to readers beside the access copy.
"""
