"""Local tooling: run batchwire's functions without AWS or Docker (invoke, demo, moto)."""
