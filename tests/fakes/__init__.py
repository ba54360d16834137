"""Fakes of external services, served over real transports for tests."""
