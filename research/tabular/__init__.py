"""Measuring tools for tabular competitions: public data sets laid out as Kaggle competitions
(make_data) and a before/after table of held-out scores and wall times (bench)."""
