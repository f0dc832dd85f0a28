"""Writes walkthrough.ipynb (kept as code so the notebook diff stays reviewable)."""
import nbformat as nbf

nb = nbf.v4.new_notebook()
md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
nb.cells = [
    md("""# Mirador run walkthrough

This notebook opens the outputs of one Mirador run (by default the latest nightly run on the bundled
sample data, `reports/nightly/latest`) and walks through them the way an analyst would:

1. what went in, and what was quarantined;
2. the revenue gap: totals with bounds, then a drill-down from HS chapter to HS6 × partner cells;
3. the ranked auditee list;
4. one importer's declarations, with the evidence behind each score;
5. the fraud model on held-out months;
6. release times per office and lane;
7. the fraud map's figures per origin country;
8. the revenue forecasts and their alarms.

Set `MIRADOR_RUN` to another run directory to open that run instead. Everything is read from parquet with
Python polars; nothing is recomputed."""),
    code("""import json, os
from pathlib import Path
import polars as pl

pl.Config.set_tbl_rows(12)
pl.Config.set_fmt_str_lengths(90)
RUN = Path(os.environ.get("MIRADOR_RUN", "../reports/nightly/latest")).resolve()
manifest = json.loads((RUN / "manifest.json").read_text())
print("run:", RUN.name, "| Mirador", manifest.get("mirador_version"))
[(s["name"], round(s.get("seconds", 0), 2)) for s in manifest["stages"]]"""),
    md("## 1. Inputs and quarantine\nEvery input row is either accepted or quarantined with a reason: the manifest reconciles them per source."),
    code("""rec = manifest["stages"][0]["metrics"]["reconciliation"]
pl.DataFrame([{"source": k, **v} for k, v in rec.items()])"""),
    code("""quarantine = pl.read_parquet(RUN / "quarantine.parquet")
quarantine.group_by("dataset", "reason_code").len().sort("len", descending=True)"""),
    md("Inspection outcomes recorded after clearance (late inspection results, post-clearance audit findings) come in through their own stage, `ingest_outcomes`, and are validated the same way. The fraud model says how many set a label, confirmed or revised one, were found in a carried window (`late`), and found no declaration (`unapplied`, listed with the reason in `fraud_model/unapplied_outcomes.parquet`)."),
    code("""stages = {s["name"]: s for s in manifest["stages"]}
applied = stages.get("fraud_model", {}).get("metrics", {}).get("inspection_outcomes")
pl.DataFrame([applied]) if applied else "no inspection outcomes feed in this run\""""),
    md("## 2. Revenue gap\nEstimated lost duty = positive mirror gap (partner exports, CIF-adjusted, minus declared imports) × applicable duty rate, with bounds."),
    code("""pl.read_parquet(RUN / "gap_summary.parquet").select(
    "period", "declared_value_usd", "mirror_cif_usd", "lost_duty_usd", "lost_duty_low_usd", "lost_duty_high_usd", "partners_not_reporting")"""),
    code("""by_chapter = pl.read_parquet(RUN / "gap_by_chapter.parquet")
top_chapter = by_chapter.group_by("hs2").agg(pl.col("lost_duty_usd").sum()).sort("lost_duty_usd", descending=True)
top_chapter.head(8)"""),
    md("Drill down into the chapter with the largest estimated loss: which HS6 × partner cells drive it, and do the flags explain any of it (transit hub, partner not reporting, below materiality)?"),
    code("""chapter = top_chapter["hs2"][0]
cells = pl.read_parquet(RUN / "gap_by_cell.parquet")
cells.filter(pl.col("hs2") == chapter).select(
    "gap_rank", "hs6", "partner", "period", "declared_value_usd", "mirror_cif_usd", "gap_share_of_mirror",
    "unit_value_ratio", "rate_pct", "lost_duty_usd", "flags").head(10)"""),
    md("## 3. The ranked auditee list"),
    code("""auditees = pl.read_parquet(RUN / "auditees.parquet")
auditees.select("rank", "importer_id", "revenue_at_risk_usd", "declarations", "flagged_by_model", "flagged_by_kmeans", "top_hs4", "reason").head(10)"""),
    md("## 4. One importer, declaration by declaration\nThe top-ranked importer's declarations with the fraud model's probability and top reasons, the k-means peer comparison and the mirror exposure of each declaration's HS6 × origin cell."),
    code("""importer = auditees["importer_id"][0]
keys = ["declaration_id", "item_no"]
decl = pl.read_parquet(RUN / "declarations.parquet").filter(pl.col("importer_id") == importer)
view = decl.select(keys + ["date", "hs6", "origin_country", "value_usd", "duty_usd", "unit_price_usd_per_kg"])
for name, cols in [
    ("fraud_scores", ["fraud_probability", "expected_duty_at_risk_usd", "top_reasons"]),
    ("kmeans_scores", ["reference_price_usd_per_kg", "price_ratio", "undervaluation_score", "undervaluation_flag"]),
    ("mirror_exposure", ["mirror_gap_ratio", "mirror_duty_share_usd"]),
]:
    path = RUN / f"{name}.parquet"
    if path.exists():
        view = view.join(pl.read_parquet(path).select(keys + cols), on=keys, how="left")
print(importer, "-", auditees["reason"][0])
view.sort("fraud_probability" if "fraud_probability" in view.columns else "value_usd", descending=True).head(10)"""),
    md("## 5. How good is the fraud model?\nMeasured on held-out test months only. `probability` ranks by fraud probability; `expected_duty` by probability × duty. "
       "`*_lo`/`*_hi` are 90 % bootstrap intervals over the test declarations; `frauds_holding_half_duty` says on how few fraudulent declarations half the fraudulent duty sits "
       "(the fewer, the more revenue@n% depends on where those few rank)."),
    code("""ev = RUN / "fraud_evaluation.parquet"
pl.read_parquet(ev).filter(pl.col("split") == "test") if ev.exists() else "fraud model not run"
"""),
    code("""rules = RUN / "fraud_rules.parquet"
pl.read_parquet(rules).select("rule", "support_train", "fraud_rate_test").head(8) if rules.exists() else "fraud model not run"
"""),
    md("## 6. Release time (WCO Time Release Study)\nThe `release_time` stage measures arrival → lodgement → payment → release. Offices and lanes are held to the service level in `pipelines/params/release_time.toml`; "
       "a run whose declarations carry no release times skips the stage and says so in the manifest."),
    code("""rt = stages.get("release_time", {}).get("metrics", {})
if rt.get("skipped"):
    print(rt["skipped"])
else:
    print(pl.read_parquet(RUN / "release_breaches.parquet"))
    print(pl.read_parquet(RUN / "release_steps.parquet").filter(pl.col("dimension") == "all"))"""),
    md("## 7. The fraud map's figures\nLost duty per origin country as the report's map shades it: the mirror gap of `gap_by_partner` plus the fraud model's expected duty at risk, and the fraud rate among inspected declarations."),
    code("""decl = pl.read_parquet(RUN / "declarations.parquet", columns=keys + ["origin_country", "fraud"])
mirror = pl.read_parquet(RUN / "gap_by_partner.parquet").group_by(pl.col("partner").alias("origin_country")).agg(pl.col("lost_duty_usd").sum().alias("mirror_usd"))
model = (pl.read_parquet(RUN / "fraud_scores.parquet", columns=keys + ["expected_duty_at_risk_usd"]).join(decl, on=keys)
         .group_by("origin_country").agg(pl.col("expected_duty_at_risk_usd").sum().alias("model_usd"),
                                         pl.col("fraud").count().alias("inspected"), pl.col("fraud").mean().alias("fraud_rate")))
(model.join(mirror, on="origin_country", how="full", coalesce=True).fill_null(0)
      .with_columns((pl.col("mirror_usd") + pl.col("model_usd")).alias("lost_duty_usd")).sort("lost_duty_usd", descending=True).head(10))"""),
    md("## 8. Revenue forecasts and alarms\nThe `revenue_forecast` stage forecasts monthly duty and declared value in total, per HS chapter and per office (MSTL with ETS on two years or more, non-seasonal ETS on less; the manifest's `note` says which), "
       "and alarms where the duty fell below the prediction interval of the forecast made the month before, or where a chapter's declared value fell against the partners' exports. "
       "`forecast_accuracy` is the rolling-origin backtest against the seasonal-naive forecast. `just forecast` makes a four-year seasonal world with a planted leak and runs it."),
    code("""fc = stages.get("revenue_forecast", {}).get("metrics", {})
print({k: fc.get(k) for k in ["model", "note", "skipped", "series", "duty_alarms", "mirror_alarms", "mean_mase", "mean_mase_seasonal_naive"]})
alarms = pl.read_parquet(RUN / "forecast_alarms.parquet")
print(alarms.sort(["period", "shortfall_usd"], descending=True).head(12))
if alarms.height:
    first = alarms.sort("shortfall_usd", descending=True).row(0, named=True)
    print(pl.read_parquet(RUN / "forecast_series.parquet").filter(
        (pl.col("dimension") == first["dimension"]) & (pl.col("group") == first["group"]) & (pl.col("measure") == first["measure"])).tail(15))"""),
]
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbf.write(nb, "walkthrough.ipynb")
