"""The analytics team's data products, built on the sales team's order book."""
