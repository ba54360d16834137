"""Read models: what lists, cards, stats, postmortems and records show, gathered from the database."""
