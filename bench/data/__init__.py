"""data layer of ftbench; see docs/ARCHITECTURE.md."""
