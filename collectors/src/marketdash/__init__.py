"""marketdash: the Python services of the Bloomberg-style market dashboard.

Layout (dependencies run one way): ``core`` (settings, logging, schema, writers, database) imports no
service; each service package (``market``, ``news``, ``api``, ``alerts``) imports ``core`` and never
another service.
"""
