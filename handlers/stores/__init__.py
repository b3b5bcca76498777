"""Temp images behind capability URLs: one core (`core`), two back ends (`folder`, `volume`)."""
