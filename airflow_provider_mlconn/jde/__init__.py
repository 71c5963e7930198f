"""JD Edwards facts: Julian dates, table specs, typed row models, query conditions."""
