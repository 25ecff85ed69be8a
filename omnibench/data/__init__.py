"""Data layer: manifests of clips, media decoding with a disk cache, dataset indexers, SynthEmo."""

from omnibench.data.manifest import Clip, ManifestError, read_manifest, write_manifest

__all__ = ["Clip", "ManifestError", "read_manifest", "write_manifest"]
