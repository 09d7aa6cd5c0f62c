"""Linkwatch, the program: the `linkwatch` command line (`cli`), the daemon that runs the
probes, collector, notifications and portal together (`daemon`), the one-shot
administrative commands (`admin`) and the demo (`demo`).

This is the wiring: the one package that imports all the others and builds them into a
running process. What they share lives in `kernel/`.
"""
