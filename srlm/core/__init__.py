"""Pure mathematics and parsers shared by every method (no model or I/O code)."""
