"""Service errors: one class per kind, each with its HTTP status, mapped to JSON in app.py."""


class ServiceError(Exception):
    code = 500
    error_id = "internal-error"

    def __init__(self, message, errors=None, headers=None):
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.headers = headers or {}


class BadRequest(ServiceError):
    code = 400
    error_id = "bad-request"


class NotFound(ServiceError):
    code = 404
    error_id = "not-found"


class Conflict(ServiceError):
    code = 409
    error_id = "conflict"


class Unprocessable(ServiceError):
    code = 422
    error_id = "invalid-input"


class BadGateway(ServiceError):
    code = 502
    error_id = "upstream-error"


class Unavailable(ServiceError):
    code = 503
    error_id = "unavailable"
