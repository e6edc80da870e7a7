"""Two tables: the rows the minimal endpoint inserts, and the rows its task updates."""

from django.db import models


class CeilingMessage(models.Model):
    """One posted message: the ceiling's counterpart of a ``BuildMessage``."""

    counter = models.BigIntegerField()
    type = models.CharField(max_length=16)
    date_created = models.DateTimeField(auto_now_add=True)


class CeilingCounter(models.Model):
    """One row the lock-and-update task changes: the counterpart of a build's decision.

    The benchmark's trigger NOTIFYs on every update, so the client sees the commit."""

    value = models.BigIntegerField(default=0)
