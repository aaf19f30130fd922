"""The alert engine: evaluates every member's alert rules on the stored market data and delivers them."""
