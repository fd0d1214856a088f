"""Analytics and models (issue 15; seed §8.4, §8.5, §9.2, §9.5): mechanism and statistical baselines,
anomaly detection, forecasts against allowances, footprint hot-spots and reduction scenarios."""
