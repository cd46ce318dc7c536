"""Unit tests of services/quality/."""
