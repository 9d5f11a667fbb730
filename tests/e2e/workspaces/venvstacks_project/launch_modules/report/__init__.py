"""The report app: a table made with packages from every layer below it."""
