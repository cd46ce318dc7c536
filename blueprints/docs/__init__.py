"""Interactive API docs (Swagger UI from the pinned swagger-ui-bundle package), offline."""
