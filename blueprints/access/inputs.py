"""Input checks before a view runs: 413 when too large, 415 when a JSON route gets another
type, 400/404 for NUL characters (PostgreSQL cannot store them), 422 for a query parameter
the operation does not declare."""
import marshmallow as ma
from flask import current_app, request
from flask_smorest import abort

BODY_METHODS = ("POST", "PUT", "PATCH")

_json_body_cache = {}


def _expects_json_body(endpoint, method):
    """True when the view declares a JSON body (flask-smorest @blp.arguments, location json)."""
    key = (endpoint, method)
    if key not in _json_body_cache:
        view = current_app.view_functions.get(endpoint)
        func = getattr(getattr(view, "view_class", None), method.lower(), None) or view
        params = getattr(func, "_apidoc", {}).get("arguments", {}).get("parameters", [])
        _json_body_cache[key] = any(
            isinstance(p, dict) and p.get("in") == "json"
            and p.get("content_type", "application/json").endswith("json") for p in params)
    return _json_body_cache[key]


def _has_nul(value):
    """True if a NUL character hides anywhere in parsed JSON (PostgreSQL text refuses it)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _refuse_nul_characters():
    """No name, filter or text of this API contains NUL; a database would fail on it."""
    if "\x00" in request.path:
        abort(404, message="no resource has a NUL character in its name", error_id="not_found")
    if any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
        abort(400, message="query parameters must not contain NUL characters",
              error_id="nul_character")


_query_names_cache = {}


def _schema_names(schema):
    """The query names a marshmallow schema loads; None when it takes any (unknown=INCLUDE)."""
    if isinstance(schema, type):
        schema = schema()
    if not isinstance(schema, ma.Schema):
        return set()
    if schema.unknown == ma.INCLUDE:
        return None
    return {field.data_key or name for name, field in schema.fields.items()
            if not field.dump_only}


def _declared_query_names(endpoint, method):
    """The query parameters the view declares (arguments, pagination, manual docs);
    None when the view is not an API operation or takes any name."""
    key = (endpoint, method)
    if key not in _query_names_cache:
        view = current_app.view_functions.get(endpoint)
        func = getattr(getattr(view, "view_class", None), method.lower(), None) or view
        apidoc = getattr(func, "_apidoc", None)
        names = set() if apidoc is not None else None
        declared = list((apidoc or {}).get("arguments", {}).get("parameters", []))
        declared.append((apidoc or {}).get("pagination", {}).get("parameters", {}))
        declared += (apidoc or {}).get("manual_doc", {}).get("parameters", [])
        for param in declared:
            if names is None or not isinstance(param, dict) or param.get("in") != "query":
                continue
            if "name" in param:
                names.add(param["name"])
                continue
            more = _schema_names(param.get("schema"))
            names = None if more is None else names | more
        _query_names_cache[key] = names
    return _query_names_cache[key]


def _refuse_unknown_query_parameters():
    """A misspelt filter must not silently return everything (`?agent=` for `agent_id=`)."""
    if not request.args:
        return
    declared = _declared_query_names(request.endpoint, request.method)
    if declared is None:
        return
    unknown = sorted(set(request.args) - declared)
    if unknown:
        abort(422, message=f"unknown query parameter(s): {', '.join(unknown)}",
              errors={"query": {name: ["Unknown field."] for name in unknown}},
              error_id="unknown_query_parameter")


def _too_large(limit):
    abort(413, message=f"the request body is larger than {limit} bytes",
          error_id="payload_too_large")


def check_input():
    if request.endpoint is None:
        return
    _refuse_nul_characters()
    _refuse_unknown_query_parameters()
    if request.method not in BODY_METHODS:
        return
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit and request.content_length and request.content_length > limit:
        _too_large(limit)
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if not (request.content_length or chunked) or not _expects_json_body(request.endpoint,
                                                                         request.method):
        return
    if not request.is_json:
        abort(415, message="send the body as JSON with Content-Type: application/json",
              error_id="unsupported_media_type")
    # Without Content-Length werkzeug stops reading at the limit and the JSON
    # parser would call the cut body invalid (400); read it here to say 413.
    if chunked and limit and len(request.get_data(cache=True)) >= limit:
        _too_large(limit)
    if _has_nul(request.get_json(silent=True, cache=True)):
        abort(400, message="text in the body must not contain NUL characters (\\u0000)",
              error_id="nul_character")
