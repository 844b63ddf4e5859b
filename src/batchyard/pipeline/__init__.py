"""Pipeline stages: sources → formats (Arrow readers) → validate → targets → results."""
