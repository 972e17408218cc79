"""Pure functions over decoded media (arrays in, numbers out). No Flask, no database."""
