"""Domain types without I/O: enums, money, option contracts, OCC symbols, clock, errors, config."""
