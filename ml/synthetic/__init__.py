"""Seeded, vectorized synthetic landing data with planted structure.

The simulation steps day by day, vectorized over customers, so behaviour can depend on state:
- each customer has latent category preferences (Dirichlet) that drive product views, cart adds
  and orders, so a recommender can beat popularity;
- the chance of buying in a session rises with engagement, recency, frequency and satisfaction;
- surveys follow latent satisfaction and experienced effort: CSAT after orders and support
  contacts, CES after support contacts, NPS periodically; detractors churn more than promoters;
- consents with realistic opt-in rates and later revocations; a few erasure requests;
- optionally a planted experiment effect (`demo.planted_lift`): in the last days, treated customers
  of one audience (the platform's own hash assignment) who qualified the day before and can be
  reached come back and buy with a given probability, so the experiment readouts have a known
  truth to find; control customers and every other audience have no effect.

Ground truth (preferences, churn, latent satisfaction) goes to `<out>/../synthetic_truth/`, and
`--bad-rows RATE` injects every class of bad input with a ledger of each injected row, so tests
can check that each one is caught.

Modules: behaviour (every rate and coefficient), settings, catalog, population, simulation,
tables, corruption (bad rows and the landing files), generate (the entry points).

Usage: python -m ml synthetic --customers 5000 --days 180 --bad-rows 0.005 --out data/landing
"""
