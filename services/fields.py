"""Shared marshmallow fields: ISO-8601 UTC times and safe identifiers."""
import datetime

from marshmallow import ValidationError, fields, validate


class FullMatch(validate.Regexp):
    """A Regexp validator (its pattern goes into the OpenAPI spec) matching the whole value.

    marshmallow's Regexp uses re.match, and `$` also matches before a trailing
    newline: "gw1\\n" would pass.
    """

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


# Dialable numbers and SIP user parts: digits, +*#, letters for SIP URIs, no
# separators that could break a FreeSWITCH dial string or channel variable.
NUMBER = FullMatch(r"^[A-Za-z0-9+*#._@:\-]{1,64}$",
                         error="must be 1-64 characters of digits, letters and + * # . _ @ : -")
IDENT = FullMatch(r"^[A-Za-z0-9._:@\-]{1,64}$",
                        error="must be 1-64 characters of letters, digits and . _ : @ -")


class StrictBoolean(fields.Boolean):
    """true or false only: 0, 1, "yes" and the like are refused, as the spec says."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("must be true or false")
        return value


class UTCDateTime(fields.DateTime):
    """Naive UTC in the database; ISO-8601 with Z on the wire; any offset accepted in."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds") + "Z"

    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        if result.tzinfo is not None:
            try:
                result = result.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            except OverflowError:
                raise ValidationError("date out of range") from None
        return result
