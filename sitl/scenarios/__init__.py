"""Scenarios: synthetic district folders and scripted sensor events."""
