"""Helpers the tests share: accounts, enrollment through the API, a headless browser."""
