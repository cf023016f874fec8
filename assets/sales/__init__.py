"""The sales team's data products: orders as they are taken, and the customers behind them."""
