"""The AsyncAPI 3 document of the live feed (`/ws`), at /api/asyncapi.json."""
