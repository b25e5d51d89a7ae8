"""Shared test configuration: draw figures off-screen."""
import matplotlib

matplotlib.use("Agg")
