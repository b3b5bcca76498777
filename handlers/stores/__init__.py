"""Temp images behind capability URLs: one core (`core`), two back ends (`folder` here; the Modal
Volume's in `handlers/hosts/modal/volume.py`)."""
