"""E-ticketing: card tokens, the pure fare engine, the ledger, tap processing, validators and riders."""
