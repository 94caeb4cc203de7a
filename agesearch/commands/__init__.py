"""Sub-commands of the ``agesearch`` CLI, one module each (see :mod:`agesearch.cli`)."""
