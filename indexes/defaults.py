"""The defaults every caller of search and recommendation shares (the API, the CLI, the audits),
with the words that explain them. A module of constants only, so the CLI can name them without
loading the query engine."""

DEFAULT_TOP = 10
"""Hits a query returns when the caller does not say."""
MAX_TOP = 100
"""The most hits one query may ask for."""
DIVERSITY = 0.7
DIVERSITY_HELP = "1: relevance only; lower: more varied"
FAIRNESS = 0.5
FAIRNESS_HELP = "0: off; 1: every slot a different work"
