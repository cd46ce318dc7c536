"""Unit tests of the agents domain."""
