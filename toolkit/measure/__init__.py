"""The measuring layer: metrics, the music21 cross-check, sweeps and steering measurements.
Imports toolkit.music and toolkit.lm."""
