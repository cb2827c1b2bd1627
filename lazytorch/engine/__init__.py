"""The engine: what turns a realize into work on a backend (the registry of backends)."""
