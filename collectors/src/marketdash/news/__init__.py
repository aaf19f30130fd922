"""News feeder: RSS/Atom, CryptoPanic and NewsAPI headlines, de-duplicated, scored and tagged with assets."""
