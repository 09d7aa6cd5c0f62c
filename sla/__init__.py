"""SLA computation: windows × contracts × link state intervals × maintenance →
availability, error budget and service credits.

Pure functions with exact arithmetic (integer microseconds, `Fraction`, `Decimal`) plus
the named queries that feed them. Nothing here probes, writes samples or renders pages.
"""
