"""The music layer: ABC text and tokens, the one ABC reader, the Tune, its score and sound, and
the musical rules (accidentals, durations, bar lengths), each in one place. Imports nothing else
from toolkit."""
