"""Schemas of the transcripts resource (the wire schemas live with the service)."""
from services.transcripts.schemas import (  # noqa: F401  (the response and query schemas)
    TranscriptSchema,
    TranscriptStatisticsArgsSchema,
    TranscriptStatisticsSchema,
)
