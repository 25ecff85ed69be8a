"""omnibench: R1-Omni-style RLVR for audio-visual emotion recognition, with measured modality attribution."""

__version__ = "0.1.0"
