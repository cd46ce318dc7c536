"""Tests of access control, in process."""
