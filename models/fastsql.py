"""Cached single-row INSERT and UPDATE statements for the events process's hot path.

peewee builds SQL anew for every query; for a ~30-column row that costs far
more than executing it. The events process writes a few rows per event, so
these statements are built once per (database, table, columns) and reused.
"""
from peewee import SQL, ModelSelect

from models.db import db

_CACHE = {}


def _quote(name):
    return f'"{name}"'


def _table(model):
    return _quote(model._meta.table_name)


def insert(instance):
    """INSERT instance with every column it has a value for (defaults already applied)."""
    model = type(instance)
    fields = [f for f in model._meta.sorted_fields
              if f.name in instance.__data__ and not (f.primary_key and
                                                      instance.__data__[f.name] is None)]
    names = tuple(f.name for f in fields)
    key = (db.obj, "insert", model, names)
    sql = _CACHE.get(key)
    if sql is None:
        param = db.obj.param
        sql = (f"INSERT INTO {_table(model)} ({', '.join(_quote(f.column_name) for f in fields)}) "
               f"VALUES ({', '.join(param for _ in fields)})")
        _CACHE[key] = sql
    db.execute_sql(sql, [f.db_value(instance.__data__[f.name]) for f in fields])
    instance._dirty.clear()
    return instance


def update(instance, guard=None):
    """UPDATE only the columns changed since the row was loaded or last written.

    guard=(field name, value): only if the stored row still has that value (a
    compare-and-set: 0 rows means another writer changed it first).
    """
    model = type(instance)
    names = tuple(sorted(instance._dirty))
    if not names:
        return 0
    pk = model._meta.primary_key
    key = (db.obj, "update", model, names, guard[0] if guard else None)
    sql = _CACHE.get(key)
    fields = [model._meta.fields[name] for name in names]
    if sql is None:
        param = db.obj.param
        assignments = ", ".join(f"{_quote(f.column_name)} = {param}" for f in fields)
        sql = f"UPDATE {_table(model)} SET {assignments} WHERE {_quote(pk.column_name)} = {param}"
        if guard:
            sql += f" AND {_quote(model._meta.fields[guard[0]].column_name)} = {param}"
        _CACHE[key] = sql
    values = [f.db_value(instance.__data__.get(f.name)) for f in fields]
    values.append(pk.db_value(instance.__data__[pk.name]))
    if guard:
        values.append(model._meta.fields[guard[0]].db_value(guard[1]))
    cursor = db.execute_sql(sql, values)
    instance._dirty.clear()
    return cursor.rowcount


def insert_values(model, **values):
    """INSERT a row of model from field values (defaults applied as the model would),
    without building a model instance: for rows written and never read back (trails)."""
    _with_defaults(model, values)
    fields = [model._meta.fields[name] for name in values
              if not (model._meta.fields[name].primary_key and values[name] is None)]
    key = (db.obj, "insert", model, tuple(f.name for f in fields))
    sql = _CACHE.get(key)
    if sql is None:
        param = db.obj.param
        sql = (f"INSERT INTO {_table(model)} ({', '.join(_quote(f.column_name) for f in fields)}) "
               f"VALUES ({', '.join(param for _ in fields)})")
        _CACHE[key] = sql
    db.execute_sql(sql, [f.db_value(values[f.name]) for f in fields])


def insert_many(model, rows, chunk=500):
    """INSERT rows (dicts of field values, the same fields in each) of model, chunk rows per
    statement, defaults applied as the model would: one round trip instead of one a row."""
    rows = [_with_defaults(model, dict(values)) for values in rows]
    if not rows:
        return
    fields = [model._meta.fields[name] for name in rows[0]
              if not (model._meta.fields[name].primary_key and rows[0][name] is None)]
    head = (f"INSERT INTO {_table(model)} ({', '.join(_quote(f.column_name) for f in fields)}) "
            "VALUES ")
    one = f"({', '.join(db.obj.param for _ in fields)})"
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        db.execute_sql(head + ", ".join(one for _ in part),
                       [f.db_value(values[f.name]) for values in part for f in fields])


def _with_defaults(model, values):
    for field, default in model._meta.defaults.items():
        if field.name not in values:
            values[field.name] = default() if callable(default) else default
    return values


def _converters(model, description):
    key = (db.obj, "columns", model, tuple(d[0] for d in description))
    converters = _CACHE.get(key)
    if converters is None:
        columns = model._meta.columns
        converters = _CACHE[key] = [(columns[d[0]].name, columns[d[0]].python_value)
                                    for d in description]
    return converters


def _instance(model, converters, row):
    instance = model(__no_default__=1, **{name: convert(v) if v is not None else None
                                          for (name, convert), v in zip(converters, row)})
    instance._dirty.clear()
    return instance


def _instances(model, cursor):
    rows = cursor.fetchall()
    if not rows:
        return []
    converters = _converters(model, cursor.description)
    return [_instance(model, converters, row) for row in rows]


def select_one(model, field_name, value):
    """The first row whose field equals value, as a clean model instance, or None.

    The same SELECT as model.find_by, run without peewee's query and cursor-wrapper
    machinery (resolving the columns of a result costs more than reading the row).
    """
    key = (db.obj, "select_one", model, field_name)
    sql = _CACHE.get(key)
    if sql is None:
        sql = _CACHE[key] = model.select().where(
            getattr(model, field_name) == "").limit(1).sql()[0]
    cursor = db.execute_sql(sql, (value, 1))
    row = cursor.fetchone()
    return None if row is None else _instance(model, _converters(model, cursor.description),
                                              row)


def select_many_with_child(model, clauses, child, child_fk):
    """The rows of model whose field is one of values, for any (field_name, values) of
    clauses, each with the one row of child pointing at it: [(instance, child or None)],
    in one query (a batch of events reads its calls at once)."""
    clauses = [(name, list(values)) for name, values in clauses if values]
    if not clauses:
        return []
    where = " OR ".join(
        f"{_table(model)}.{_quote(model._meta.fields[name].column_name)} IN "
        f"({', '.join(db.obj.param for _ in values)})" for name, values in clauses)
    sql = f"{_joined(model, child, child_fk)} WHERE {where}"
    cursor = db.execute_sql(sql, [v for _, values in clauses for v in values])
    return [_split_row(model, child, cursor.description, row) for row in cursor.fetchall()]


def _joined(model, child, child_fk):
    """SELECT of model's and child's named columns, child LEFT JOINed on child_fk."""
    parent, kid = _table(model), _table(child)
    columns = [f"{parent}.{_quote(c)}" for c in model._meta.columns] + \
        [f"{kid}.{_quote(c)}" for c in child._meta.columns]
    return (f"SELECT {', '.join(columns)} FROM {parent} LEFT JOIN {kid} ON "
            f"{kid}.{_quote(child._meta.fields[child_fk].column_name)} = "
            f"{parent}.{_quote(model._meta.primary_key.column_name)}")


def _split_row(model, child, description, row):
    """(model instance, child instance or None) from a row of both tables' named columns."""
    split = len(model._meta.columns)
    instance = _instance(model, _converters(model, description[:split]), row[:split])
    child_pk = list(child._meta.columns).index(child._meta.primary_key.column_name)
    if row[split + child_pk] is None:
        return instance, None
    return instance, _instance(child, _converters(child, description[split:]), row[split:])


def select_where(model, field_name, value):
    """Every row whose field equals value, as clean model instances (id order)."""
    return select_rows(model, ("where", field_name), lambda: model.select().where(
        getattr(model, field_name) == value).order_by(model._meta.primary_key), [value])


def select_rows(model, shape, build, params):
    """The rows of a query whose SQL text depends only on shape, as clean instances.

    build() makes the peewee query (whole rows of model) once per shape; params are
    the values it binds, in its order (checked the first time: a query whose values
    come in another order must not be cached this way).
    """
    key = (db.obj, "select_rows", model, shape)
    sql = _CACHE.get(key)
    if sql is None:
        sql, built = build().sql()
        if list(built) != list(params):
            raise ValueError(f"select_rows {shape}: the query binds {built!r}, not {params!r}")
        _CACHE[key] = sql
    return _instances(model, db.execute_sql(sql, params))


def select_all(query):
    """The rows of a peewee SELECT of whole rows of one model, as clean instances.

    The columns are read with `*` instead of named one by one, and the rows converted
    without peewee's cursor wrapper: for a page of 50 calls these two are most of the
    request's CPU. A query with a join (or its own column list) runs as peewee's.
    """
    if not isinstance(query, ModelSelect) or query._joins or not query._is_default or \
            len(query._from_list) != 1:
        return list(query)
    sql, params = query.select(SQL("*")).sql()
    return _instances(query.model, db.execute_sql(sql, params))
