"""Analysis tools people run on their own files: ``yingji fwi``, ``yingji slope``, ``yingji flood``.

Each module registers one sub-command (``add_parser``) and runs it (``run``): CSV in (header
row, extra columns passed through), CSV out on stdout, every bad row reported on stderr.
"""
