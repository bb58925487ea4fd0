"""Reads that run on every panel's opening, compiled to SQL once instead of on every call.

Django compiles a QuerySet to SQL each time it is evaluated. For a one-row lookup that is most of its cost: the
meeting-and-app read of a panel's snapshot took 0.71 ms of CPU through the ORM and 0.15 ms as the same SQL run on a
cursor (docs/PERFORMANCE.md "2026-12-02 (session 26)"). A CompiledRead is written as an ordinary values_list()
QuerySet over stand-in arguments; the first call compiles it, and every call runs that SQL with the real arguments
put where the stand-ins were. Only for columns the database driver returns as Python wants them (numbers, text; a
boolean is 0 or 1 on SQLite): no field converter runs, so an encrypted field or a JSON one must be read through the
ORM.
"""

from django.core.exceptions import MultipleObjectsReturned
from django.db import connection


class CompiledRead:
    def __init__(self, build, *stand_ins):
        """`build(*stand_ins)` returns the values_list() QuerySet; each stand-in is a distinct value of the type
        its argument will have, that Django passes to the database unchanged (exact lookups)."""
        self._build = build
        self._stand_ins = stand_ins
        self._sql = None
        self._order = None  # for each placeholder of the SQL, the index of the argument it takes

    def _compile(self):
        sql, params = self._build(*self._stand_ins).query.sql_with_params()
        order = [self._stand_ins.index(param) for param in params]  # ValueError: a stand-in was transformed
        self._sql, self._order = sql, order

    def one(self, *args):
        """The one row these arguments select, as a tuple; None when there is none."""
        if self._sql is None:
            self._compile()
        with connection.cursor() as cursor:
            cursor.execute(self._sql, [args[index] for index in self._order])
            rows = cursor.fetchmany(2)
        if len(rows) > 1:
            raise MultipleObjectsReturned("a compiled read for one row found several")
        return rows[0] if rows else None
