"""Local mode's settings: both sides' in one object, since one process (and one environment)
holds both. A module of its own so that the command line reads them without importing the app."""

from __future__ import annotations

from handlers.settings import ServerSettings
from pipelines.settings import EngineSettings


class LocalSettings(ServerSettings, EngineSettings):
    """Both sides' settings: in local mode one process (and one environment) holds both."""
