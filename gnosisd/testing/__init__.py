"""Fakes that ship with the package for tests: recording bus, fixtures."""
