"""Applications built on the library and the engine (the demo)."""
