"""Shared building blocks of every service; imports no service package."""
