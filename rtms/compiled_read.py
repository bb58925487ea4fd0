"""Reads on the hot paths (a panel's opening, every panel action and state push, a stream's state changes),
compiled to SQL once instead of on every call.

Django compiles a QuerySet to SQL each time it is evaluated. For a one-row lookup that is most of its cost: the
meeting-and-app read of a panel's snapshot took 0.71 ms of CPU through the ORM and 0.15 ms as the same SQL run on a
cursor (docs/PERFORMANCE.md "2026-12-02 (session 26)"); building queries was a third of the web process's CPU
under approvals (docs/PERFORMANCE.md "2026-12-03 (session 29)"). A compiled read is written as an ordinary
QuerySet over stand-in arguments; the first call compiles it, and every call runs that SQL with the real arguments
put where the stand-ins were.

- CompiledRead: a values_list() QuerySet, rows as tuples. Only for columns the database driver returns as Python
  wants them (numbers, text; a boolean is 0 or 1 on SQLite): no field converter runs.
- CompiledModelRead: a QuerySet of model instances, with select_related, annotations and select_for_update; the
  rows become instances as Django's own ModelIterable makes them, every field's converter run (encrypted fields
  included). The first call of one that locks must be inside a transaction, as any locking read.
"""

from django.core.exceptions import MultipleObjectsReturned
from django.db import connection
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError


class CompiledRead:
    def __init__(self, build, *stand_ins):
        """`build(*stand_ins)` returns the QuerySet; each stand-in is a distinct value of the type its argument
        will have, that Django passes to the database unchanged (exact lookups), and equal to no constant of the
        query (the constants, a status or a list of roles, stay as compiled)."""
        self._build = build
        self._stand_ins = stand_ins
        self._sql = None
        self._locks = False  # a select_for_update(): refused outside a transaction, as the ORM refuses it
        self._params = None  # for each placeholder of the SQL: (index of the argument it takes, or None; constant)

    def _compile(self):
        queryset = self._build(*self._stand_ins)
        self._locks = queryset.query.select_for_update
        sql, params = self._compiled(queryset)
        slots = [(self._stand_ins.index(param), None) if param in self._stand_ins else (None, param)
                 for param in params]
        if {index for index, _ in slots if index is not None} != set(range(len(self._stand_ins))):
            raise ValueError("a stand-in is not among the compiled query's parameters: Django transformed it")
        self._params, self._sql = slots, sql

    def _compiled(self, queryset):
        return queryset.query.sql_with_params()

    def _rows(self, args, size=None):
        if self._sql is None:
            self._compile()
        elif self._locks and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        with connection.cursor() as cursor:
            cursor.execute(self._sql, [constant if index is None else args[index] for index, constant in self._params])
            return cursor.fetchall() if size is None else cursor.fetchmany(size)

    def _made(self, rows):
        return rows

    def one(self, *args):
        """The one row these arguments select (a tuple, or an instance for a CompiledModelRead); None when there
        is none."""
        rows = self._rows(args, 2)
        if len(rows) > 1:
            raise MultipleObjectsReturned("a compiled read for one row found several")
        return self._made(rows)[0] if rows else None

    def all(self, *args):
        """Every row these arguments select, as a list."""
        return self._made(self._rows(args))


class CompiledModelRead(CompiledRead):
    def _compiled(self, queryset):
        compiler = queryset.query.get_compiler(queryset.db)
        sql, params = compiler.as_sql()  # also fills compiler.select, klass_info and annotation_col_map
        select, klass_info = compiler.select, compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        self._compiler = compiler
        self._converters = compiler.get_converters([column for column, _, _ in select[:compiler.col_count]])
        self._model, self._db, self._span = klass_info["model"], queryset.db, (start, end)
        self._attnames = [column.target.attname for column, _, _ in select[start:end]]
        self._populators = get_related_populators(klass_info, select, queryset.db)
        self._annotations = list(compiler.annotation_col_map.items())
        return sql, params

    def _made(self, rows):
        """As ModelIterable makes instances (django/db/models/query.py), from the compiled query's layout."""
        if self._converters:
            rows = self._compiler.apply_converters(rows, self._converters)
        start, end = self._span
        made = []
        for row in rows:
            instance = self._model.from_db(self._db, self._attnames, row[start:end])
            for populator in self._populators:
                populator.populate(row, instance)
            for name, position in self._annotations:
                setattr(instance, name, row[position])
            made.append(instance)
        return made
