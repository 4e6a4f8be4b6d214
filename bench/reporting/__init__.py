"""reporting layer of ftbench; see docs/ARCHITECTURE.md."""
