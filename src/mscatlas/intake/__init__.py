"""Living intake."""
