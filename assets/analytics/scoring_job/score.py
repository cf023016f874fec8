"""Customer scoring, shipped as its own program: it needs only ``dagster-pipes``.

Run by the platform's ``pipes`` resource (a subprocess locally, a pod on Kubernetes). Reads the
customers from the Pipes extra ``customers``, sends the scored rows back as a custom message,
and reports materialization metadata and the ``scores_in_range`` check.
"""

import platform
from collections import Counter

from dagster_pipes import open_dagster_pipes

MODEL_VERSION = "value-v1"
REVENUE_WEIGHT = 0.7
TIERS = ((70.0, "gold"), (40.0, "silver"), (0.0, "bronze"))


def score(customers: list[dict]) -> list[dict]:
    """0-100: revenue and order count relative to the best customer, weighted 70/30."""
    top_revenue = max((c["revenue"] for c in customers), default=0) or 1
    top_orders = max((c["orders"] for c in customers), default=0) or 1
    scored = []
    for customer in customers:
        value = 100 * (
            REVENUE_WEIGHT * customer["revenue"] / top_revenue
            + (1 - REVENUE_WEIGHT) * customer["orders"] / top_orders
        )
        points = round(value, 1)
        tier = next(name for floor, name in TIERS if points >= floor)
        scored.append({"customer_id": customer["customer_id"], "score": points, "tier": tier})
    return scored


def main() -> None:
    with open_dagster_pipes() as pipes:
        customers = pipes.get_extra("customers")
        scored = score(customers)
        scores = [row["score"] for row in scored]
        out_of_range = sum(1 for s in scores if not 0 <= s <= 100)
        pipes.log.info(f"Scored {len(scored)} customers with {MODEL_VERSION}.")
        pipes.report_custom_message({"scores": scored})
        pipes.report_asset_check(
            check_name="scores_in_range",
            passed=bool(scored) and out_of_range == 0,
            metadata={"scored": len(scored), "out_of_range": out_of_range},
        )
        pipes.report_asset_materialization(
            metadata={
                "customers": len(scored),
                "mean_score": round(sum(scores) / len(scores), 2) if scores else 0.0,
                "tiers": {"raw_value": dict(Counter(r["tier"] for r in scored)), "type": "json"},
                "model_version": MODEL_VERSION,
                "scorer_python": platform.python_version(),
            }
        )


if __name__ == "__main__":
    main()
