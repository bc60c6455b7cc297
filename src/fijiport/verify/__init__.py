"""Checking packages: ``validate`` (spec, bioimageio.core's tests, cross-format agreement, the consumer
runtimes) and ``zoo-check`` / ``upload`` (what the BioImage Model Zoo expects beyond a valid rdf)."""
