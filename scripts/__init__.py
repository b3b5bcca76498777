"""Operator scripts; a package so the tests can import them."""
