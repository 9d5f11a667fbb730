"""The report app: a table of a numpy computation, made by packages from three layers."""
