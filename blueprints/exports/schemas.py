"""Query schema of the export: the history's filters, plus an explicit format."""
from marshmallow import fields, validate

from blueprints.calls.schemas import CallQueryArgsSchema


class CallExportArgsSchema(CallQueryArgsSchema):
    format = fields.String(validate=validate.OneOf(["csv", "ndjson"]), metadata={
        "description": "csv or ndjson; without it the Accept header decides "
                       "(application/x-ndjson, else CSV)"})
