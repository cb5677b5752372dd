"""The lessons layer: pure plot functions, and the widgets, studios and views built on them.
Views take their numbers from the layers below, by name."""
