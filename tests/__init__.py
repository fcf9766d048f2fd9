"""Tests of data-analysis: unit tests mirror src/, contracts/ holds the port suites."""
